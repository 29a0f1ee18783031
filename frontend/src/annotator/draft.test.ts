import { describe, expect, it } from "vitest";
import {
  DraftStore,
  type KeyValueStore,
  decodeRuns,
  encodeRuns,
  encodeRunsAt,
  runsFromBase64,
  runsToBase64,
} from "./draft";
import { UNLABELED } from "./mask";

function mapStore(
  memory: Map<string, string>,
  setItem: (key: string, value: string) => void = (key, value) => void memory.set(key, value),
): KeyValueStore {
  return {
    getItem: (key) => memory.get(key) ?? null,
    setItem,
    removeItem: (key) => void memory.delete(key),
    get length() {
      return memory.size;
    },
    key: (index) => [...memory.keys()][index] ?? null,
  };
}

describe("draft runs", () => {
  it("finds the same changes visiting only the pixels that may change", () => {
    const base = new Uint8Array(40).fill(UNLABELED);
    base[3] = 1;
    const mask = base.slice();
    mask.fill(2, 10, 20);
    mask.fill(3, 20, 22);
    mask[3] = UNLABELED;
    // Two superpixels' pixels, each ascending, the second one's first (as QueriedRegions lists them).
    const pixels = Uint32Array.from([15, 16, 17, 18, 19, 20, 21, 22, 0, 1, 2, 3, 10, 11, 12, 13, 14]);
    const runs = encodeRunsAt(mask, base, pixels);
    expect(Array.from(runs)).toEqual([15, 5, 2, 20, 2, 3, 3, 1, UNLABELED, 10, 5, 2]);
    const all = decodeRuns(encodeRuns(mask, base), 40);
    const some = decodeRuns(runs, 40);
    const byIndex = (changes: { indices: Uint32Array; values: Uint8Array }): [number, number][] =>
      Array.from(changes.indices, (index, k): [number, number] => [index, changes.values[k] as number]).sort(
        (a, b) => a[0] - b[0],
      );
    expect(byIndex(some)).toEqual(byIndex(all));
  });

  it("round-trips the pixels that differ from the base", () => {
    const base = new Uint8Array(40).fill(UNLABELED);
    base[3] = 1;
    const mask = base.slice();
    mask.fill(2, 10, 20);
    mask.fill(3, 20, 22);
    mask[3] = UNLABELED;
    const runs = encodeRuns(mask, base);
    expect(Array.from(runs)).toEqual([3, 1, UNLABELED, 10, 10, 2, 20, 2, 3]);
    const decoded = decodeRuns(runsFromBase64(runsToBase64(runs)), 40);
    const rebuilt = base.slice();
    decoded.indices.forEach((index, k) => {
      rebuilt[index] = decoded.values[k]!;
    });
    expect(rebuilt).toEqual(mask);
  });

  it("refuses runs that do not fit the image", () => {
    expect(() => decodeRuns(Uint32Array.from([38, 5, 1]), 40)).toThrow(/does not fit/);
  });

  it("stores, loads and removes drafts, and survives a full or broken store", () => {
    const memory = new Map<string, string>();
    const store = new DraftStore(mapStore(memory));
    const key = DraftStore.key(1, 7);
    const draft = { format: 1 as const, queryId: 3, baseVersion: 2, clicks: 4, seconds: 9.5, savedAt: "", runs: "" };
    expect(store.save(key, draft)).toBe(true);
    expect(store.load(key)).toEqual(draft);
    memory.set(key, "{not json");
    expect(store.load(key)).toBeNull();
    store.remove(key);
    expect(store.load(key)).toBeNull();
    const full = new DraftStore(
      mapStore(new Map(), () => {
        throw new Error("QuotaExceededError");
      }),
    );
    expect(full.save(key, draft)).toBe(false);
  });

  it("forgets the oldest other drafts when the storage is full", () => {
    const memory = new Map<string, string>();
    const limit = 3; // entries the fake storage holds
    const store = new DraftStore(
      mapStore(memory, (key, value) => {
        if (!memory.has(key) && memory.size >= limit) throw new Error("QuotaExceededError");
        memory.set(key, value);
      }),
    );
    const draft = (savedAt: string) => ({
      format: 1 as const, queryId: 1, baseVersion: 0, clicks: 0, seconds: 0, savedAt, runs: "",
    });
    memory.set("unrelated", "kept");
    store.save(DraftStore.key(1, 1), draft("2026-01-02"));
    store.save(DraftStore.key(1, 2), draft("2026-01-01"));
    expect(store.save(DraftStore.key(1, 3), draft("2026-01-03"))).toBe(true);
    expect([...memory.keys()].sort()).toEqual([DraftStore.key(1, 1), DraftStore.key(1, 3), "unrelated"]);
  });
});
