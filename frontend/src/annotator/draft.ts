/**
 * Local drafts: the edits not yet saved to the server, kept in localStorage so that a reload,
 * a crash or a lost connection loses nothing. A draft stores only the pixels that differ from
 * the mask version it was based on, as runs (start, length, value), plus the clicks and
 * seconds spent so far.
 */

export interface Changes {
  indices: Uint32Array;
  values: Uint8Array;
}

export interface Draft {
  format: 1;
  queryId: number;
  baseVersion: number;
  clicks: number;
  seconds: number;
  /** The model's prediction was accepted (absent in drafts written before pre-fill). */
  prefilled?: boolean;
  savedAt: string;
  /** base64 of little-endian uint32 triples (start, length, value). */
  runs: string;
}

/** Pixels where `mask` differs from `base`, as runs of consecutive indices with one value. */
export function encodeRuns(mask: Uint8Array, base: Uint8Array): Uint32Array {
  const runs: number[] = [];
  let index = 0;
  const n = mask.length;
  while (index < n) {
    if (mask[index] === base[index]) {
      index += 1;
      continue;
    }
    const value = mask[index] as number;
    const start = index;
    while (index < n && mask[index] === value && mask[index] !== base[index]) index += 1;
    runs.push(start, index - start, value);
  }
  return Uint32Array.from(runs);
}

/**
 * Like `encodeRuns`, visiting only `pixels` (flat indices, e.g. the queried superpixels' own:
 * no other pixel can change), so a draft of a 12 Mpx image does not scan 12 M pixels. Runs
 * come in the order of `pixels`; `decodeRuns` gives back the same changes.
 */
export function encodeRunsAt(mask: Uint8Array, base: Uint8Array, pixels: Uint32Array): Uint32Array {
  const runs: number[] = [];
  const n = pixels.length;
  let k = 0;
  while (k < n) {
    const start = pixels[k] as number;
    const value = mask[start] as number;
    if (value === base[start]) {
      k += 1;
      continue;
    }
    let end = start + 1;
    k += 1;
    while (k < n && pixels[k] === end && mask[end] === value && base[end] !== value) {
      end += 1;
      k += 1;
    }
    runs.push(start, end - start, value);
  }
  return Uint32Array.from(runs);
}

export function decodeRuns(runs: Uint32Array, pixelCount: number): Changes {
  let total = 0;
  for (let k = 1; k < runs.length; k += 3) total += runs[k] as number;
  const indices = new Uint32Array(total);
  const values = new Uint8Array(total);
  let out = 0;
  for (let k = 0; k + 2 < runs.length; k += 3) {
    const start = runs[k] as number;
    const length = runs[k + 1] as number;
    const value = runs[k + 2] as number;
    if (start + length > pixelCount || value > 255) throw new Error("draft does not fit the image");
    for (let j = 0; j < length; j++, out++) {
      indices[out] = start + j;
      values[out] = value;
    }
  }
  return { indices, values };
}

export function runsToBase64(runs: Uint32Array): string {
  const bytes = new Uint8Array(runs.buffer, runs.byteOffset, runs.byteLength);
  let binary = "";
  for (let k = 0; k < bytes.length; k += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(k, k + 0x8000));
  }
  return btoa(binary);
}

export function runsFromBase64(text: string): Uint32Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let k = 0; k < binary.length; k++) bytes[k] = binary.charCodeAt(k);
  return new Uint32Array(bytes.buffer, 0, bytes.length >> 2);
}

/** Where drafts live; `localStorage` in the browser, a Map in tests. */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
  readonly length: number;
  key(index: number): string | null;
}

const PREFIX = "tessera.draft.";

export class DraftStore {
  constructor(private readonly store: KeyValueStore) {}

  static key(projectId: number, imageId: number): string {
    return `${PREFIX}${projectId}.${imageId}`;
  }

  load(key: string): Draft | null {
    try {
      const text = this.store.getItem(key);
      if (text === null) return null;
      const draft = JSON.parse(text) as Draft;
      return draft.format === 1 && typeof draft.runs === "string" ? draft : null;
    } catch {
      return null;
    }
  }

  /**
   * Stores `draft`; when the storage is full, forgets the oldest other drafts (images skipped
   * long ago) until it fits. False when it still does not (or storage is disabled).
   */
  save(key: string, draft: Draft): boolean {
    const text = JSON.stringify(draft);
    const others = this.otherDrafts(key);
    for (;;) {
      try {
        this.store.setItem(key, text);
        return true;
      } catch {
        const oldest = others.shift();
        if (oldest === undefined) return false;
        this.remove(oldest);
      }
    }
  }

  /** Keys of the drafts other than `key`, oldest first. */
  private otherDrafts(key: string): string[] {
    const found: { key: string; savedAt: string }[] = [];
    try {
      for (let k = 0; k < this.store.length; k++) {
        const name = this.store.key(k);
        if (name === null || name === key || !name.startsWith(PREFIX)) continue;
        found.push({ key: name, savedAt: this.load(name)?.savedAt ?? "" });
      }
    } catch {
      return [];
    }
    return found.sort((a, b) => a.savedAt.localeCompare(b.savedAt)).map((entry) => entry.key);
  }

  remove(key: string): void {
    try {
      this.store.removeItem(key);
    } catch {
      // Storage disabled: there is nothing to remove.
    }
  }
}
