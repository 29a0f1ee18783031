import { describe, expect, it } from "vitest";
import { applyEdit, encodeEdit } from "./edit";
import { UNLABELED } from "./mask";
import { QueriedRegions } from "./superpixels";
import { emptyMask, gridMap } from "./testing";

// 16x12 image, 4x4 superpixels: 4 columns x 3 rows, ids 0..11; superpixel 5 is x 4..7, y 4..7.
const W = 16;
const H = 12;

function regions(queried: number[]): QueriedRegions {
  return QueriedRegions.build(gridMap(W, H, 4), queried);
}

function fillSuperpixel(mask: Uint8Array, id: number, value: number): void {
  gridMap(W, H, 4).labels.forEach((label, index) => {
    if (label === id) mask[index] = value;
  });
}

describe("encodeEdit", () => {
  it("sends whole changed superpixels as fills and the rest as row-major runs", () => {
    const queried = regions([0, 5, 10]);
    const base = emptyMask(W, H);
    const mask = base.slice();
    fillSuperpixel(mask, 0, 2);
    fillSuperpixel(mask, 10, 1);
    mask.fill(3, 5 * W + 4, 5 * W + 7); // a stroke inside superpixel 5, row 5, x 4..6
    mask[6 * W + 5] = 3;
    expect(encodeEdit(mask, base, queried)).toEqual({
      fills: [
        [0, 2],
        [10, 1],
      ],
      runs: [
        [5 * W + 4, 3, 3],
        [6 * W + 5, 1, 3],
      ],
    });
  });

  it("sends nothing for an unchanged mask and erases as class 255", () => {
    const queried = regions([0, 5]);
    const base = emptyMask(W, H);
    fillSuperpixel(base, 0, 2);
    fillSuperpixel(base, 5, 1);
    expect(encodeEdit(base.slice(), base, queried)).toEqual({ fills: [], runs: [] });
    const mask = base.slice();
    fillSuperpixel(mask, 0, UNLABELED);
    mask[4 * W + 4] = UNLABELED;
    expect(encodeEdit(mask, base, queried)).toEqual({
      fills: [[0, UNLABELED]],
      runs: [[4 * W + 4, 1, UNLABELED]],
    });
  });

  it("keeps runs out of filled superpixels even where they touch in row order", () => {
    // Superpixels 4 and 5 side by side: 4 filled whole, 5 brushed on the same rows.
    const queried = regions([4, 5]);
    const base = emptyMask(W, H);
    const mask = base.slice();
    fillSuperpixel(mask, 4, 1);
    mask.fill(1, 4 * W + 4, 4 * W + 6);
    const edit = encodeEdit(mask, base, queried);
    expect(edit).toEqual({ fills: [[4, 1]], runs: [[4 * W + 4, 2, 1]] });
  });

  it("applied to the base, gives the mask back", () => {
    const queried = regions([1, 2, 6, 9]);
    const base = emptyMask(W, H);
    fillSuperpixel(base, 6, 0);
    const mask = base.slice();
    let seed = 7;
    for (let k = 0; k < 200; k++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const index = seed % (W * H);
      if (queried.slotAt(index) >= 0) mask[index] = seed % 3 === 0 ? UNLABELED : seed % 3;
    }
    fillSuperpixel(mask, 9, 2);
    const edit = encodeEdit(mask, base, queried);
    expect(edit.fills).toContainEqual([9, 2]);
    const rebuilt = base.slice();
    applyEdit(rebuilt, edit, queried);
    expect(Array.from(rebuilt)).toEqual(Array.from(mask));
    for (let k = 1; k < edit.runs.length; k++) {
      const [previous, length] = edit.runs[k - 1] as [number, number, number];
      expect((edit.runs[k] as number[])[0]).toBeGreaterThanOrEqual(previous + length);
    }
  });
});
