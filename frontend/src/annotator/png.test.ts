import { describe, expect, it } from "vitest";
import { crc32, decodeGreyPng, encodeGreyPng, zlibCompress } from "./png";

describe("greyscale PNG", () => {
  it("round-trips a mask byte for byte", async () => {
    const width = 37;
    const height = 11;
    const pixels = new Uint8Array(width * height).map((_, k) => (k % 7 === 0 ? 255 : k % 5));
    const png = await encodeGreyPng(pixels, width, height);
    expect(Array.from(png.subarray(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    const decoded = await decodeGreyPng(png);
    expect(decoded.width).toBe(width);
    expect(decoded.height).toBe(height);
    expect(decoded.pixels).toEqual(pixels);
  });

  it("computes the standard CRC-32", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });

  it("undoes every PNG row filter", async () => {
    // Hand-built rows using filters 0..4 on a 3x5 image; expected values in the comments.
    const width = 3;
    const rows = [
      [0, 10, 20, 30], // none: 10 20 30
      [1, 5, 1, 1], // sub: 5 6 7
      [2, 1, 1, 1], // up: 6 7 8
      [3, 2, 2, 2], // average: 6/2+2=5, (5+7)/2+2=8, (8+8)/2+2=10
      [4, 1, 1, 1], // paeth: pick up (5) +1 = 6, then ...
    ];
    const raw = Uint8Array.from(rows.flat());
    const header = new Uint8Array(13);
    new DataView(header.buffer).setUint32(0, width);
    new DataView(header.buffer).setUint32(4, rows.length);
    header[8] = 8;
    const chunk = (type: string, data: Uint8Array): number[] => {
      const body = Uint8Array.from([...type].map((c) => c.charCodeAt(0)).concat(Array.from(data)));
      const length = new Uint8Array(4);
      new DataView(length.buffer).setUint32(0, data.length);
      const crc = new Uint8Array(4);
      new DataView(crc.buffer).setUint32(0, crc32(body));
      return [...length, ...body, ...crc];
    };
    const png = Uint8Array.from([
      137, 80, 78, 71, 13, 10, 26, 10,
      ...chunk("IHDR", header),
      ...chunk("IDAT", await zlibCompress(raw)),
      ...chunk("IEND", new Uint8Array(0)),
    ]);
    const { pixels } = await decodeGreyPng(png);
    expect(Array.from(pixels.subarray(0, 12))).toEqual([10, 20, 30, 5, 6, 7, 6, 7, 8, 5, 8, 10]);
    // Paeth row: a = left, b = up, c = up-left.
    const paeth = (a: number, b: number, c: number): number => {
      const p = a + b - c;
      const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
      return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    };
    const p0 = (1 + paeth(0, 5, 0)) & 0xff;
    const p1 = (1 + paeth(p0, 8, 5)) & 0xff;
    const p2 = (1 + paeth(p1, 10, 8)) & 0xff;
    expect(Array.from(pixels.subarray(12))).toEqual([p0, p1, p2]);
  });

  it("refuses colour PNGs", async () => {
    const png = await encodeGreyPng(new Uint8Array(4), 2, 2);
    png[25] = 2; // colour type RGB (the CRC is not checked; the type is)
    await expect(decodeGreyPng(png)).rejects.toThrow(/colour type 2/);
  });
});
