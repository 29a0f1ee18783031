/** Small generated maps for the unit tests. */
import { UNLABELED } from "./mask";
import type { SuperpixelMap } from "./superpixels";

/** Square superpixels of side `cell`, numbered row by row (as tests/backend builders do). */
export function gridMap(width: number, height: number, cell: number): SuperpixelMap {
  const columns = Math.ceil(width / cell);
  const rows = Math.ceil(height / cell);
  const labels = new Uint16Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      labels[y * width + x] = Math.floor(y / cell) * columns + Math.floor(x / cell);
    }
  }
  return { width, height, count: columns * rows, labels };
}

export function emptyMask(width: number, height: number): Uint8Array {
  return new Uint8Array(width * height).fill(UNLABELED);
}

/** The set of pixel indices holding `value`. */
export function pixelsWith(mask: Uint8Array, value: number): number[] {
  const out: number[] = [];
  mask.forEach((v, index) => {
    if (v === value) out.push(index);
  });
  return out;
}
