import { describe, expect, it } from "vitest";
import { DraftStore, decodeRuns, encodeRuns, runsFromBase64, runsToBase64 } from "./draft";
import { UNLABELED } from "./mask";

describe("draft runs", () => {
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
    const store = new DraftStore({
      getItem: (key) => memory.get(key) ?? null,
      setItem: (key, value) => void memory.set(key, value),
      removeItem: (key) => void memory.delete(key),
    });
    const key = DraftStore.key(1, 7);
    const draft = { format: 1 as const, queryId: 3, baseVersion: 2, clicks: 4, seconds: 9.5, savedAt: "", runs: "" };
    expect(store.save(key, draft)).toBe(true);
    expect(store.load(key)).toEqual(draft);
    memory.set(key, "{not json");
    expect(store.load(key)).toBeNull();
    store.remove(key);
    expect(store.load(key)).toBeNull();
    const full = new DraftStore({
      getItem: () => null,
      setItem: () => {
        throw new Error("QuotaExceededError");
      },
      removeItem: () => undefined,
    });
    expect(full.save(key, draft)).toBe(false);
  });
});
