import { describe, expect, it } from "vitest";
import { History } from "./history";
import { MaskEditor, UNLABELED } from "./mask";
import { QueriedRegions } from "./superpixels";
import { emptyMask, gridMap, pixelsWith } from "./testing";

// 16x12 image, 4x4 superpixels: 4 columns x 3 rows, ids 0..11.
const W = 16;
const H = 12;

function editor(queried: number[], mask = emptyMask(W, H)): MaskEditor {
  return new MaskEditor(QueriedRegions.build(gridMap(W, H, 4), queried), mask);
}

function superpixelPixels(id: number): number[] {
  const map = gridMap(W, H, 4);
  const out: number[] = [];
  map.labels.forEach((label, index) => {
    if (label === id) out.push(index);
  });
  return out;
}

describe("QueriedRegions", () => {
  it("indexes the pixels and bounds of each queried superpixel", () => {
    const regions = QueriedRegions.build(gridMap(W, H, 4), [5, 0]);
    expect(Array.from(regions.ids)).toEqual([0, 5]);
    expect(Array.from(regions.pixelsOf(1))).toEqual(superpixelPixels(5));
    expect(regions.bounds[1]).toEqual({ x0: 4, y0: 4, x1: 8, y1: 8 });
    expect(regions.editable.reduce((sum, v) => sum + v, 0)).toBe(32);
    expect(regions.slotAt(0)).toBe(0);
    expect(regions.slotAt(15)).toBe(-1);
  });

  it("refuses ids outside the map", () => {
    expect(() => QueriedRegions.build(gridMap(W, H, 4), [12])).toThrow(/not in 0..11/);
  });
});

describe("fill", () => {
  it("fills exactly the queried superpixel under the click", () => {
    const e = editor([5, 6]);
    const diff = e.fill(5.5, 6.2, 2);
    expect(diff).not.toBeNull();
    expect(pixelsWith(e.mask, 2)).toEqual(superpixelPixels(5));
    expect(pixelsWith(e.mask, UNLABELED)).toHaveLength(W * H - 16);
    expect(diff!.indices).toHaveLength(16);
    expect(Array.from(diff!.before)).toEqual(new Array(16).fill(UNLABELED));
    expect(Array.from(diff!.after)).toEqual(new Array(16).fill(2));
    expect(e.labeledSuperpixels).toBe(1);
    expect(e.takeDirty()).toEqual({ x0: 4, y0: 4, x1: 8, y1: 8 });
  });

  it("changes nothing on a locked superpixel or outside the image", () => {
    const e = editor([5]);
    expect(e.fill(0, 0, 1)).toBeNull();
    expect(e.fill(-1, 3, 1)).toBeNull();
    expect(e.fill(16, 3, 1)).toBeNull();
    expect(pixelsWith(e.mask, UNLABELED)).toHaveLength(W * H);
  });

  it("returns no diff when the superpixel already has the class", () => {
    const e = editor([5]);
    e.fill(5, 5, 1);
    expect(e.fill(6, 6, 1)).toBeNull();
  });

  it("overwrites brushed pixels and records only those it changed", () => {
    const e = editor([5]);
    e.fill(5, 5, 1);
    e.beginStroke();
    e.paintSegment(5, 5, 5, 5, 1, 2);
    e.endStroke();
    const diff = e.fill(6, 6, 1)!;
    expect(Array.from(diff.indices)).toEqual([5 * W + 5]);
    expect(Array.from(diff.before)).toEqual([2]);
  });
});

describe("brush", () => {
  it("paints the pixel under the cursor with diameter 1 and a 3x3 square with 3", () => {
    const e = editor([5]);
    e.beginStroke();
    e.paintSegment(5.9, 6.1, 5.9, 6.1, 1, 3);
    expect(e.endStroke()!.indices).toEqual(Uint32Array.from([6 * W + 5]));
    e.beginStroke();
    e.paintSegment(6.5, 6.5, 6.5, 6.5, 3, 4);
    const square = [5, 6, 7].flatMap((y) => [5, 6, 7].map((x) => y * W + x));
    expect(Array.from(e.endStroke()!.indices).sort((a, b) => a - b)).toEqual(square);
  });

  it("is clipped to the queried superpixels: locked pixels never change", () => {
    // Superpixel 5 spans x 4..7, y 4..7; stroke across its left edge into locked 4.
    const e = editor([5]);
    e.beginStroke();
    e.paintSegment(1, 5.5, 7.5, 5.5, 3, 1);
    const diff = e.endStroke()!;
    const painted = pixelsWith(e.mask, 1);
    expect(painted.length).toBeGreaterThan(0);
    const inside = new Set(superpixelPixels(5));
    expect(painted.every((index) => inside.has(index))).toBe(true);
    expect(diff.indices).toHaveLength(painted.length);
    // Rows 4..6 of superpixel 5 (the stroke at y = 5 with radius 1.5), all four columns.
    expect(painted).toEqual([4, 5, 6].flatMap((y) => [4, 5, 6, 7].map((x) => y * W + x)));
  });

  it("changes nothing when the whole stroke is outside the queried superpixels", () => {
    const e = editor([5]);
    const before = e.mask.slice();
    e.beginStroke();
    e.paintSegment(0, 0, 3, 11, 4, 2);
    expect(e.endStroke()).toBeNull();
    expect(e.mask).toEqual(before);
    expect(e.takeDirty()).toEqual({ x0: 0, y0: 0, x1: 0, y1: 0 });
  });

  it("paints every pixel within the radius of the segment (a capsule)", () => {
    const e = editor(Array.from({ length: 12 }, (_, k) => k));
    e.beginStroke();
    e.paintSegment(2.5, 2.5, 12.5, 2.5, 2, 1);
    e.endStroke();
    // Radius 1 around y = 2.5 from x = 2.5 to 12.5: rows 1..3 between, plus the round caps.
    const expected: number[] = [];
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const px = x + 0.5;
        const py = y + 0.5;
        const t = Math.min(1, Math.max(0, (px - 2.5) / 10));
        const dx = px - (2.5 + 10 * t);
        const dy = py - 2.5;
        if (dx * dx + dy * dy <= 1) expected.push(y * W + x);
      }
    }
    expect(pixelsWith(e.mask, 1)).toEqual(expected);
  });

  it("records each pixel once per stroke, with its value from before the stroke", () => {
    const e = editor([5]);
    e.fill(5, 5, 1);
    e.beginStroke();
    e.paintSegment(5, 5, 6, 5, 2, 3);
    e.paintSegment(6, 5, 5, 5, 2, 3);
    const diff = e.endStroke()!;
    expect(new Set(diff.indices).size).toBe(diff.indices.length);
    expect(Array.from(diff.before).every((v) => v === 1)).toBe(true);
  });

  it("erases back to unlabeled and keeps the labeled count exact", () => {
    const e = editor([5, 6]);
    e.fill(5, 5, 1);
    e.fill(9, 5, 2);
    expect(e.labeledSuperpixels).toBe(2);
    e.beginStroke();
    e.paintSegment(5.5, 5.5, 5.5, 5.5, 1, UNLABELED);
    e.endStroke();
    expect(e.labeledSuperpixels).toBe(1);
    expect(e.mask[5 * W + 5]).toBe(UNLABELED);
  });

  it("finds the next queried superpixel with unlabeled pixels, cyclically", () => {
    const e = editor([1, 5, 6]);
    e.fill(5, 5, 1); // slot 1 (superpixel 5) labeled
    expect(e.nextUnlabeled(-1)).toBe(0);
    expect(e.nextUnlabeled(0)).toBe(2);
    expect(e.nextUnlabeled(2)).toBe(0);
    e.fill(5, 1, 1);
    e.fill(9, 5, 1);
    expect(e.nextUnlabeled(0)).toBe(-1);
  });

  it("counts superpixels already labeled in the loaded mask", () => {
    const mask = emptyMask(W, H);
    for (const index of superpixelPixels(6)) mask[index] = 0;
    mask[superpixelPixels(5)[0]!] = 0;
    const e = editor([5, 6], mask);
    expect(e.labeledSuperpixels).toBe(1);
    expect(e.queriedSuperpixels).toBe(2);
  });
});

describe("undo and redo", () => {
  it("undoes and redoes fills and strokes in order", () => {
    const e = editor([5, 6]);
    const history = new History();
    const apply = (indices: Uint32Array, values: Uint8Array): void => e.applyValues(indices, values);
    const empty = e.mask.slice();
    history.push(e.fill(5, 5, 1)!);
    const afterFill = e.mask.slice();
    e.beginStroke();
    e.paintSegment(4, 4, 10, 6, 2, 2);
    history.push(e.endStroke()!);
    const afterStroke = e.mask.slice();

    expect(history.undo(apply)).toBe(true);
    expect(e.mask).toEqual(afterFill);
    expect(history.undo(apply)).toBe(true);
    expect(e.mask).toEqual(empty);
    expect(e.labeledSuperpixels).toBe(0);
    expect(history.undo(apply)).toBe(false);

    expect(history.redo(apply)).toBe(true);
    expect(e.mask).toEqual(afterFill);
    expect(history.redo(apply)).toBe(true);
    expect(e.mask).toEqual(afterStroke);
    expect(history.redo(apply)).toBe(false);
  });

  it("forgets the redo stack after a new edit", () => {
    const e = editor([5, 6]);
    const history = new History();
    const apply = (indices: Uint32Array, values: Uint8Array): void => e.applyValues(indices, values);
    history.push(e.fill(5, 5, 1)!);
    history.undo(apply);
    history.push(e.fill(9, 5, 2)!);
    expect(history.canRedo).toBe(false);
    expect(history.redo(apply)).toBe(false);
    expect(pixelsWith(e.mask, 1)).toHaveLength(0);
  });

  it("drops the oldest edits beyond its memory budget", () => {
    const e = editor([5, 6]);
    const history = new History(100); // one 16-pixel fill is 96 bytes
    const apply = (indices: Uint32Array, values: Uint8Array): void => e.applyValues(indices, values);
    history.push(e.fill(5, 5, 1)!);
    history.push(e.fill(9, 5, 2)!);
    expect(history.undo(apply)).toBe(true);
    expect(history.undo(apply)).toBe(false);
    expect(pixelsWith(e.mask, 1)).toHaveLength(16);
  });

  it("replays a recorded edit as one diff, skipping pixels now locked", () => {
    const e = editor([5]);
    const indices = Uint32Array.from([0, 5 * W + 5, 5 * W + 6]);
    const diff = e.replay(indices, Uint8Array.from([1, 1, 2]))!;
    expect(Array.from(diff.indices)).toEqual([5 * W + 5, 5 * W + 6]);
    expect(e.mask[0]).toBe(UNLABELED);
  });
});

describe("drag-fill and fill-all", () => {
  it("fills every queried superpixel a drag passes over, as one diff", () => {
    // Superpixels 4, 5, 6 are the middle row's first three; 5 is locked.
    const e = editor([4, 6, 7]);
    e.beginStroke();
    expect(e.fillAlong(1, 6, 1, 6, 2)).toBe(1);
    // One sample jump from x=1 to x=14: the whole row in between is crossed.
    expect(e.fillAlong(1, 6, 14, 6, 2)).toBe(2);
    expect(e.fillAlong(14, 6, 1, 6, 2)).toBe(0); // each superpixel once per stroke
    const diff = e.endStroke();
    expect(pixelsWith(e.mask, 2).sort((a, b) => a - b)).toEqual(
      [...superpixelPixels(4), ...superpixelPixels(6), ...superpixelPixels(7)].sort((a, b) => a - b),
    );
    expect(diff!.indices).toHaveLength(48);
    expect(e.labeledSuperpixels).toBe(3);
  });

  it("keyboard fill sets one queried superpixel by its slot", () => {
    const e = editor([2, 9]);
    expect(pixelsWith(e.fillSuperpixel(1, 4)!.after, 4)).toHaveLength(16);
    expect(pixelsWith(e.mask, 4)).toEqual(superpixelPixels(9));
    expect(e.fillSuperpixel(2, 4)).toBeNull(); // no such slot
  });

  it("fill-all labels only what is still unlabeled, as one undoable diff", () => {
    const e = editor([0, 1, 2]);
    e.fill(0, 0, 3);
    e.beginStroke();
    e.paintSegment(4, 0, 4, 0, 1, 1); // one pixel of superpixel 1
    e.endStroke();
    const diff = e.fillRemaining(2);
    expect(diff!.indices).toHaveLength(31);
    expect(pixelsWith(e.mask, 3)).toEqual(superpixelPixels(0));
    expect(pixelsWith(e.mask, 1)).toEqual([4]);
    expect(pixelsWith(e.mask, 2)).toHaveLength(31);
    expect(e.labeledSuperpixels).toBe(3);
    expect(e.fillRemaining(2)).toBeNull();
    const history = new History();
    history.push(diff!);
    history.undo((indices, values) => e.applyValues(indices, values));
    expect(e.labeledSuperpixels).toBe(1);
  });

  it("pre-fills each remaining superpixel with its own class, keeping labels already there", () => {
    const e = editor([0, 1, 2]);
    e.beginStroke();
    e.paintSegment(4, 0, 4, 0, 1, 1); // one pixel of superpixel 1 labeled by hand
    e.endStroke();
    // Slot 0 (superpixel 0) -> class 3, slot 1 -> 2, slot 2 has no prediction (-1).
    const predicted = [3, 2, -1];
    const diff = e.fillRemainingBySlot((slot) => predicted[slot] ?? -1);
    expect(diff!.indices).toHaveLength(16 + 15);
    expect(pixelsWith(e.mask, 3)).toEqual(superpixelPixels(0));
    expect(pixelsWith(e.mask, 1)).toEqual([4]);
    expect(pixelsWith(e.mask, 2)).toHaveLength(15);
    expect(pixelsWith(e.mask, UNLABELED)).toHaveLength(W * H - 32);
    expect(e.labeledSuperpixels).toBe(2);
    const history = new History();
    history.push(diff!);
    history.undo((indices, values) => e.applyValues(indices, values));
    expect(e.labeledSuperpixels).toBe(0);
    expect(pixelsWith(e.mask, 1)).toEqual([4]);
  });
});
