/**
 * Greyscale 8-bit PNG, the format the API stores masks in (pixel = class index, 255 = unlabeled).
 *
 * Canvas `toBlob` only writes RGBA and its decoding may colour-manage pixel values, so masks are
 * encoded and decoded here, byte-exact, with the browser's own zlib (Compression Streams).
 */

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let k = 0; k < bytes.length; k++) {
    c = (CRC_TABLE[(c ^ (bytes[k] as number)) & 0xff] as number) ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

async function pipe(data: Uint8Array, stream: GenericTransformStream): Promise<Uint8Array> {
  const piped = new Blob([data as BlobPart]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(piped).arrayBuffer());
}

/** zlib (RFC 1950) compression, as PNG's IDAT and the API's superpixel maps use. */
export function zlibCompress(data: Uint8Array): Promise<Uint8Array> {
  return pipe(data, new CompressionStream("deflate"));
}

export function zlibDecompress(data: Uint8Array): Promise<Uint8Array> {
  return pipe(data, new DecompressionStream("deflate"));
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let k = 0; k < 4; k++) out[4 + k] = type.charCodeAt(k);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** pixels: (height x width) row-major bytes -> PNG (colour type 0, bit depth 8). */
export async function encodeGreyPng(
  pixels: Uint8Array,
  width: number,
  height: number,
): Promise<Uint8Array> {
  if (pixels.length !== width * height) {
    throw new Error(`${pixels.length} pixels do not make a ${width}x${height} image`);
  }
  // Filter "Sub" per row: runs of one class become runs of zeros, which deflate well.
  const raw = new Uint8Array(height * (width + 1));
  for (let y = 0; y < height; y++) {
    const row = y * (width + 1);
    const source = y * width;
    raw[row] = 1;
    raw[row + 1] = pixels[source] as number;
    for (let x = 1; x < width; x++) {
      raw[row + 1 + x] = ((pixels[source + x] as number) - (pixels[source + x - 1] as number)) & 0xff;
    }
  }
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = 8; // bit depth
  header[9] = 0; // greyscale
  return concat([
    Uint8Array.from(SIGNATURE),
    chunk("IHDR", header),
    chunk("IDAT", await zlibCompress(raw)),
    chunk("IEND", new Uint8Array(0)),
  ]);
}

export interface GreyImage {
  width: number;
  height: number;
  pixels: Uint8Array;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Decodes a non-interlaced 8-bit greyscale or palette PNG to one byte per pixel (the grey
 * value, or the palette index, which is the class index in a palette mask).
 */
export async function decodeGreyPng(png: Uint8Array): Promise<GreyImage> {
  for (let k = 0; k < SIGNATURE.length; k++) {
    if (png[k] !== SIGNATURE[k]) throw new Error("not a PNG");
  }
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let offset = 8;
  let width = 0;
  let height = 0;
  const idat: Uint8Array[] = [];
  while (offset + 8 <= png.length) {
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...png.subarray(offset + 4, offset + 8));
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === "IHDR") {
      width = view.getUint32(offset + 8);
      height = view.getUint32(offset + 12);
      const [depth, colour, , , interlace] = data.subarray(8, 13);
      if (depth !== 8 || (colour !== 0 && colour !== 3) || interlace !== 0) {
        throw new Error(`unsupported PNG (bit depth ${depth}, colour type ${colour}, interlace ${interlace})`);
      }
    } else if (type === "IDAT") {
      idat.push(data);
    } else if (type === "IEND") {
      break;
    }
    offset += 12 + length;
  }
  if (width === 0 || height === 0) throw new Error("PNG without a header");
  const raw = await zlibDecompress(concat(idat));
  if (raw.length < height * (width + 1)) throw new Error("truncated PNG data");
  const pixels = new Uint8Array(width * height);
  // One tight loop per filter type and row: a 4000x3000 mask is 12 M pixels.
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (width + 1)];
    const src = y * (width + 1) + 1;
    const out = y * width;
    const prev = out - width;
    const end = out + width;
    switch (filter) {
      case 0:
        pixels.set(raw.subarray(src, src + width), out);
        break;
      case 1: {
        let left = 0;
        for (let k = src, o = out; o < end; k++, o++) {
          left = ((raw[k] as number) + left) & 0xff;
          pixels[o] = left;
        }
        break;
      }
      case 2:
        if (y === 0) pixels.set(raw.subarray(src, src + width), out);
        else for (let k = src, o = out; o < end; k++, o++) pixels[o] = (raw[k] as number) + (pixels[o - width] as number);
        break;
      case 3:
        for (let x = 0; x < width; x++) {
          const left = x > 0 ? (pixels[out + x - 1] as number) : 0;
          const up = y > 0 ? (pixels[prev + x] as number) : 0;
          pixels[out + x] = (raw[src + x] as number) + ((left + up) >> 1);
        }
        break;
      case 4:
        for (let x = 0; x < width; x++) {
          const left = x > 0 ? (pixels[out + x - 1] as number) : 0;
          const up = y > 0 ? (pixels[prev + x] as number) : 0;
          const upLeft = x > 0 && y > 0 ? (pixels[prev + x - 1] as number) : 0;
          pixels[out + x] = (raw[src + x] as number) + paeth(left, up, upLeft);
        }
        break;
      default:
        throw new Error(`bad PNG filter ${filter}`);
    }
  }
  return { width, height, pixels };
}
