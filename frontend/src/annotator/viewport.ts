/**
 * Screen-resolution sampling for large images (render.ts, `ViewportLayers`): instead of
 * canvases as large as the image, the visible part is drawn into stage-sized canvases, each
 * stage pixel taking the image pixel under its centre (as the outlines do, outlines.ts).
 */
import type { Rect } from "./geometry";
import type { View } from "./view";

/**
 * Images with more pixels than this are drawn at screen resolution (`ViewportLayers`);
 * smaller ones keep full-size layers moved by a CSS transform (`LayerStack`), which pan and
 * zoom for free. 4 Mpx is also where the worker starts segmenting on a downscaled copy.
 */
export const LARGE_IMAGE_PIXELS = 4_000_000;

/** The downscaled copy of a large image drawn while zoomed out holds at most this many pixels. */
export const PREVIEW_PIXELS = 2_000_000;

export function isLargeImage(width: number, height: number): boolean {
  return width * height > LARGE_IMAGE_PIXELS;
}

/** The size of a downscaled copy of a `width` x `height` image within `maxPixels` (aspect kept). */
export function previewSize(width: number, height: number, maxPixels = PREVIEW_PIXELS): { width: number; height: number } {
  if (width * height <= maxPixels) return { width, height };
  const scale = Math.sqrt(maxPixels / (width * height));
  return { width: Math.max(1, Math.floor(width * scale)), height: Math.max(1, Math.floor(height * scale)) };
}

/**
 * The image pixel under each stage column and row for `view` (-1: outside the image).
 * columns: (screenWidth,) image x; rows: (screenHeight,) image y.
 */
export function screenSampling(
  view: View,
  screenWidth: number,
  screenHeight: number,
  imageWidth: number,
  imageHeight: number,
): { columns: Int32Array; rows: Int32Array } {
  const columns = new Int32Array(screenWidth);
  for (let sx = 0; sx < screenWidth; sx++) {
    const ix = Math.floor((sx + 0.5 - view.x) / view.scale);
    columns[sx] = ix >= 0 && ix < imageWidth ? ix : -1;
  }
  const rows = new Int32Array(screenHeight);
  for (let sy = 0; sy < screenHeight; sy++) {
    const iy = Math.floor((sy + 0.5 - view.y) / view.scale);
    rows[sy] = iy >= 0 && iy < imageHeight ? iy : -1;
  }
  return { columns, rows };
}

/**
 * The stage pixels whose centres fall in image rectangle `rect` under `view`, clipped to the
 * stage (`screenWidth` x `screenHeight`); empty when none do.
 */
export function screenRect(rect: Rect, view: View, screenWidth: number, screenHeight: number): Rect {
  // Pixel sx samples image x = floor((sx + 0.5 - view.x) / scale): the first stage pixel with
  // its centre at or after image x0, the last one before image x1. A pixel of margin on each
  // side absorbs rounding; resampling a pixel that did not change is harmless.
  const { scale, x, y } = view;
  return {
    x0: Math.max(0, Math.floor(rect.x0 * scale + x - 0.5) - 1),
    y0: Math.max(0, Math.floor(rect.y0 * scale + y - 0.5) - 1),
    x1: Math.min(screenWidth, Math.ceil(rect.x1 * scale + x - 0.5) + 1),
    y1: Math.min(screenHeight, Math.ceil(rect.y1 * scale + y - 0.5) + 1),
  };
}

/**
 * Writes `lut[values[image pixel]]` for every stage pixel of `rect` into `out` (a stage
 * `screenWidth` pixels wide, RGBA words), 0 outside the image. `values` is row-major,
 * `imageWidth` wide: the mask (through the class colours) or the editable flags.
 */
export function sampleToScreen(
  out: Uint32Array,
  screenWidth: number,
  rect: Rect,
  columns: Int32Array,
  rows: Int32Array,
  values: Uint8Array,
  imageWidth: number,
  lut: Uint32Array,
): void {
  for (let sy = rect.y0; sy < rect.y1; sy++) {
    const iy = rows[sy] as number;
    const start = sy * screenWidth + rect.x0;
    const end = sy * screenWidth + rect.x1;
    if (iy < 0) {
      out.fill(0, start, end);
      continue;
    }
    const base = iy * imageWidth;
    for (let index = start, sx = rect.x0; index < end; index++, sx++) {
      const ix = columns[sx] as number;
      out[index] = ix < 0 ? 0 : (lut[values[base + ix] as number] as number);
    }
  }
}
