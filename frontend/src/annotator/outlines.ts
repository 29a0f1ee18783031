/**
 * Superpixel outlines drawn in screen space: one screen pixel wide at any zoom and image size
 * (drawn at image resolution and scaled, they grew to 10–30 px bars when zoomed in and vanished
 * at fit on large images).
 *
 * Each stage pixel looks up the image pixel under its centre; it is an outline pixel when the
 * superpixel there differs from the one under its right or lower neighbour. Its colour follows
 * the most pressing superpixel of the pair: asked and unfinished, asked and finished, locked.
 */
import type { Labels } from "./superpixels";
import type { View } from "./view";

/** Outline styles, in order of precedence (a pair of superpixels takes the larger). */
export const OUTLINE_NONE = 0;
export const OUTLINE_LOCKED = 1;
export const OUTLINE_DONE = 2;
export const OUTLINE_TODO = 3;

export interface OutlineSource {
  labels: Labels;
  width: number;
  height: number;
  /** Per superpixel id, shifted by one (index 0 is "outside the image"): an OUTLINE_* style. */
  styleOf: Uint8Array;
}

/**
 * Writes the outlines of `source` under `view` into `out` (`screenWidth` x `screenHeight`
 * RGBA words); `colours[style]` is the packed colour of each style (0: transparent).
 */
export function drawOutlines(
  out: Uint32Array,
  screenWidth: number,
  screenHeight: number,
  view: View,
  source: OutlineSource,
  colours: Uint32Array,
): void {
  if (out.length !== screenWidth * screenHeight) {
    throw new Error(`outline buffer holds ${out.length} pixels, expected ${screenWidth}x${screenHeight}`);
  }
  const { labels, width, height, styleOf } = source;
  // The image column under each stage column (-1: outside the image).
  const columns = new Int32Array(screenWidth);
  for (let sx = 0; sx < screenWidth; sx++) {
    const ix = Math.floor((sx + 0.5 - view.x) / view.scale);
    columns[sx] = ix >= 0 && ix < width ? ix : -1;
  }
  const rowLabels = (sy: number, into: Int32Array): void => {
    const iy = Math.floor((sy + 0.5 - view.y) / view.scale);
    if (iy < 0 || iy >= height) {
      into.fill(-1);
      return;
    }
    const base = iy * width;
    for (let sx = 0; sx < screenWidth; sx++) {
      const ix = columns[sx] as number;
      into[sx] = ix < 0 ? -1 : (labels[base + ix] as number);
    }
  };
  let current = new Int32Array(screenWidth);
  let below = new Int32Array(screenWidth);
  rowLabels(0, current);
  for (let sy = 0, index = 0; sy < screenHeight; sy++) {
    // The stage's own last row and column draw no edge: the image goes on past them.
    if (sy + 1 < screenHeight) rowLabels(sy + 1, below);
    else below.set(current);
    for (let sx = 0; sx < screenWidth; sx++, index++) {
      const here = current[sx] as number;
      const right = sx + 1 < screenWidth ? (current[sx + 1] as number) : here;
      const down = below[sx] as number;
      let style = OUTLINE_NONE;
      if (right !== here) style = Math.max(styleOf[here + 1] as number, styleOf[right + 1] as number);
      if (down !== here) {
        style = Math.max(style, styleOf[here + 1] as number, styleOf[down + 1] as number);
      }
      out[index] = colours[style] as number;
    }
    const swap = current;
    current = below;
    below = swap;
  }
}
