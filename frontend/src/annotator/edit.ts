/**
 * The save the browser sends: what changed since the mask version it loaded, in the terms
 * people label in (PATCH .../mask, backend/annotations/edits.py).
 *
 * A queried superpixel that changed and now holds one class everywhere is a fill
 * `[superpixel id, class]`; every other changed pixel goes into row-major runs
 * `[offset, length, class]` (offset = y * width + x), sorted, not overlapping, never inside a
 * filled superpixel. Class 255 erases. A typical save (a score of one-click fills and a brush
 * stroke) is a few hundred bytes of JSON at any image size, where the whole mask PNG was tens
 * of kilobytes and cost the server a decode, a comparison and an encode.
 */
import type { QueriedRegions } from "./superpixels";

export type Fill = [superpixelId: number, classIndex: number];
export type Run = [offset: number, length: number, classIndex: number];

export interface MaskEdit {
  fills: Fill[];
  runs: Run[];
}

/**
 * The edit that turns `base` into `mask`. Only pixels of queried superpixels may differ (the
 * editor never writes others; any other difference is left out); `regions` indexes them.
 */
export function encodeEdit(mask: Uint8Array, base: Uint8Array, regions: QueriedRegions): MaskEdit {
  if (mask.length !== base.length || mask.length !== regions.width * regions.height) {
    throw new Error(
      `mask (${mask.length}) and base (${base.length}) must both hold ` +
        `${regions.width}x${regions.height} pixels`,
    );
  }
  const fills: Fill[] = [];
  const filledSlot = new Uint8Array(regions.slotCount);
  for (let slot = 0; slot < regions.slotCount; slot++) {
    const pixels = regions.pixelsOf(slot);
    if (pixels.length === 0) continue;
    const value = mask[pixels[0] as number] as number;
    let uniform = true;
    let changed = false;
    for (let k = 0; k < pixels.length; k++) {
      const index = pixels[k] as number;
      const current = mask[index] as number;
      if (current !== value) {
        uniform = false;
        break;
      }
      if (current !== base[index]) changed = true;
    }
    if (uniform && changed) {
      fills.push([regions.ids[slot] as number, value]);
      filledSlot[slot] = 1;
    }
  }
  // Brushed pixels: the changed ones of the other queried superpixels, in row-major order.
  // Only queried pixels are visited (the editor changes no others), never the whole image.
  const brushed: number[] = [];
  for (let slot = 0; slot < regions.slotCount; slot++) {
    if (filledSlot[slot] === 1) continue;
    const pixels = regions.pixelsOf(slot);
    for (let k = 0; k < pixels.length; k++) {
      const index = pixels[k] as number;
      if (mask[index] !== base[index]) brushed.push(index);
    }
  }
  const order = Uint32Array.from(brushed).sort();
  const runs: Run[] = [];
  for (let k = 0; k < order.length; ) {
    const start = order[k] as number;
    const value = mask[start] as number;
    let end = start + 1;
    k += 1;
    while (k < order.length && order[k] === end && mask[end] === value) {
      end += 1;
      k += 1;
    }
    runs.push([start, end - start, value]);
  }
  return { fills, runs };
}

/** Applies an edit to `base` (in place) as the server does: fills, then runs. */
export function applyEdit(base: Uint8Array, edit: MaskEdit, regions: QueriedRegions): void {
  for (const [id, value] of edit.fills) {
    const slot = regions.slotOf[id] ?? -1;
    if (slot < 0) throw new Error(`superpixel ${id} is not queried`);
    const pixels = regions.pixelsOf(slot);
    for (let k = 0; k < pixels.length; k++) base[pixels[k] as number] = value;
  }
  for (const [offset, length, value] of edit.runs) base.fill(value, offset, offset + length);
}
