import { describe, expect, it } from "vitest";
import { OUTLINE_DONE, OUTLINE_LOCKED, OUTLINE_TODO, drawOutlines } from "./outlines";
import { gridMap } from "./testing";

// 8x4 image, two 4x4 superpixels side by side: 0 asked and unfinished, 1 locked.
const map = gridMap(8, 4, 4);
const styleOf = Uint8Array.from([0, OUTLINE_TODO, OUTLINE_LOCKED]);
const colours = Uint32Array.from([0, 1, 2, 3]);
const source = { labels: map.labels, width: 8, height: 4, styleOf };

function outline(screenWidth: number, screenHeight: number, scale: number, x = 0, y = 0): Uint32Array {
  const out = new Uint32Array(screenWidth * screenHeight);
  drawOutlines(out, screenWidth, screenHeight, { scale, x, y }, source, colours);
  return out;
}

function row(out: Uint32Array, width: number, y: number): number[] {
  return Array.from(out.subarray(y * width, (y + 1) * width));
}

describe("drawOutlines", () => {
  it("draws a boundary one screen pixel wide at any zoom", () => {
    expect(row(outline(8, 4, 1), 8, 1)).toEqual([0, 0, 0, OUTLINE_TODO, 0, 0, 0, 0]);
    const zoomed = outline(32, 16, 4);
    for (const y of [0, 7, 14]) {
      const line = row(zoomed, 32, y);
      expect(line.filter((v) => v !== 0)).toEqual([OUTLINE_TODO]);
      expect(line.indexOf(OUTLINE_TODO)).toBe(15);
    }
  });

  it("outlines asked superpixels at the image's edge but not at the stage's", () => {
    // The image starts 2 px into a 12 px stage: column 1 (outside) borders superpixel 0.
    const shifted = outline(12, 4, 1, 2, 0);
    // The locked superpixel ends at x 9 with a faint line; the stage's own last column and
    // row draw none.
    const expected = [0, OUTLINE_TODO, 0, 0, 0, OUTLINE_TODO, 0, 0, 0, OUTLINE_LOCKED, 0, 0];
    expect(row(shifted, 12, 1)).toEqual(expected);
    expect(row(shifted, 12, 3)).toEqual(row(shifted, 12, 1));
  });

  it("lets a finished superpixel's style show where nothing unfinished borders it", () => {
    const done = Uint8Array.from([0, OUTLINE_DONE, OUTLINE_LOCKED]);
    const out = new Uint32Array(8 * 4);
    drawOutlines(out, 8, 4, { scale: 1, x: 0, y: 0 }, { ...source, styleOf: done }, colours);
    expect(row(out, 8, 0)[3]).toBe(OUTLINE_DONE);
  });

  it("refuses a buffer of the wrong size", () => {
    expect(() => drawOutlines(new Uint32Array(3), 8, 4, { scale: 1, x: 0, y: 0 }, source, colours)).toThrow(
      /expected 8x4/,
    );
  });
});
