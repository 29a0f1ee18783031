/**
 * The superpixel map of one image and the part of it a query lets the annotator edit.
 *
 * Labels are row-major, one id per pixel (0..count-1), as the API sends them.
 */
import type { Rect } from "./geometry";

export type Labels = Uint16Array | Int32Array;

export interface SuperpixelMap {
  width: number;
  height: number;
  count: number;
  labels: Labels;
}

/** The data of a QueriedRegions (what a worker posts back). */
export type QueriedRegionFields = Pick<
  QueriedRegions,
  "width" | "height" | "labels" | "editable" | "ids" | "slotOf" | "start" | "pixels" | "bounds"
>;

/**
 * The queried superpixels of an image, indexed for O(pixels of one superpixel) fills.
 *
 * `slotOf[id]` is the superpixel's position in `ids` (or -1 when it is not queried); the
 * pixels of slot s are `pixels[start[s] .. start[s + 1])` (compressed sparse rows).
 */
export class QueriedRegions {
  readonly width: number;
  readonly height: number;
  readonly labels: Labels;
  /** 1 where the pixel lies in a queried superpixel (editable), else 0 (locked). */
  readonly editable: Uint8Array;
  readonly ids: Int32Array;
  readonly slotOf: Int32Array;
  readonly start: Uint32Array;
  readonly pixels: Uint32Array;
  readonly bounds: Rect[];

  private constructor(map: SuperpixelMap, ids: Int32Array, slotOf: Int32Array) {
    const { width, height, labels } = map;
    this.width = width;
    this.height = height;
    this.labels = labels;
    this.ids = ids;
    this.slotOf = slotOf;
    const slots = ids.length;
    const counts = new Uint32Array(slots);
    const editable = new Uint8Array(width * height);
    for (let index = 0; index < labels.length; index++) {
      const slot = slotOf[labels[index] as number] as number;
      if (slot >= 0) {
        editable[index] = 1;
        counts[slot]! += 1;
      }
    }
    const start = new Uint32Array(slots + 1);
    for (let s = 0; s < slots; s++) start[s + 1] = (start[s] as number) + (counts[s] as number);
    const pixels = new Uint32Array(start[slots] as number);
    const cursor = start.slice(0, slots);
    // Only the editable pixels are placed (and then measured): at 12 Mpx the pass over all
    // pixels is the cost, so it does nothing else.
    for (let index = 0; index < editable.length; index++) {
      if (editable[index] === 0) continue;
      const slot = slotOf[labels[index] as number] as number;
      pixels[cursor[slot]!++] = index;
    }
    const x0 = new Int32Array(slots).fill(width);
    const y0 = new Int32Array(slots).fill(height);
    const x1 = new Int32Array(slots).fill(-1);
    const y1 = new Int32Array(slots).fill(-1);
    for (let slot = 0; slot < slots; slot++) {
      const first = start[slot] as number;
      const end = start[slot + 1] as number;
      if (end === first) continue;
      // Pixels are in row-major order: the first and last give the rows.
      y0[slot] = Math.floor((pixels[first] as number) / width);
      y1[slot] = Math.floor((pixels[end - 1] as number) / width);
      let left = width;
      let right = -1;
      for (let k = first; k < end; k++) {
        const x = (pixels[k] as number) % width;
        if (x < left) left = x;
        if (x > right) right = x;
      }
      x0[slot] = left;
      x1[slot] = right;
    }
    this.editable = editable;
    this.start = start;
    this.pixels = pixels;
    this.bounds = Array.from({ length: slots }, (_, s) => ({
      x0: x0[s] as number,
      y0: y0[s] as number,
      x1: (x1[s] as number) + 1,
      y1: (y1[s] as number) + 1,
    }));
  }

  /** Indexes `queriedIds` of `map`; ids outside 0..count-1 are a caller error. */
  static build(map: SuperpixelMap, queriedIds: readonly number[]): QueriedRegions {
    if (map.labels.length !== map.width * map.height) {
      throw new Error(
        `superpixel labels hold ${map.labels.length} values, expected ${map.width}x${map.height}`,
      );
    }
    const unique = Array.from(new Set(queriedIds)).sort((a, b) => a - b);
    const slotOf = new Int32Array(map.count).fill(-1);
    unique.forEach((id, slot) => {
      if (!Number.isInteger(id) || id < 0 || id >= map.count) {
        throw new Error(`queried superpixel ${id} is not in 0..${map.count - 1}`);
      }
      slotOf[id] = slot;
    });
    return new QueriedRegions(map, Int32Array.from(unique), slotOf);
  }

  /**
   * An index built elsewhere from its fields (the look-ahead builds it in a worker and
   * transfers the arrays back: pages/lookahead.ts), without computing it again.
   */
  static restore(fields: QueriedRegionFields): QueriedRegions {
    return Object.assign(Object.create(QueriedRegions.prototype) as QueriedRegions, fields);
  }

  get slotCount(): number {
    return this.ids.length;
  }

  /** The slot of the queried superpixel under pixel `index`, or -1 if it is locked. */
  slotAt(index: number): number {
    return this.slotOf[this.labels[index] as number] as number;
  }

  pixelsOf(slot: number): Uint32Array {
    return this.pixels.subarray(this.start[slot], this.start[slot + 1]);
  }
}
