import { describe, expect, it } from "vitest";
import { QueriedRegions } from "../annotator/superpixels";
import { gridMap } from "../annotator/testing";
import { Lookahead, type TaskIdentity } from "./lookahead";

interface Loaded {
  queryId: number;
  version: number;
}

function task(queryId: number, overrides: Partial<TaskIdentity> = {}): TaskIdentity {
  return { query_id: queryId, image_id: queryId + 100, superpixel_map_id: queryId + 200, mask_version: 0, ...overrides };
}

/** A Lookahead whose downloads finish when the test says so, recording loads and disposals. */
function harness() {
  const pending = new Map<number, { resolve: (value: Loaded) => void; reject: (error: Error) => void }>();
  const loads: number[] = [];
  const disposed: number[] = [];
  const inMemory = new Set<number>();
  let peak = 0;
  const lookahead = new Lookahead<TaskIdentity, Loaded>(
    (t) =>
      new Promise<Loaded>((resolve, reject) => {
        loads.push(t.query_id);
        pending.set(t.query_id, {
          resolve: (value) => {
            inMemory.add(value.queryId);
            peak = Math.max(peak, inMemory.size);
            resolve(value);
          },
          reject,
        });
      }),
    (loaded) => {
      disposed.push(loaded.queryId);
      inMemory.delete(loaded.queryId);
    },
  );
  const settle = () => new Promise<void>((done) => setTimeout(done, 0));
  const finish = async (queryId: number, version = 0) => {
    await settle();
    pending.get(queryId)?.resolve({ queryId, version });
    await settle();
  };
  return { lookahead, loads, disposed, finish, settle, pending, peak: () => peak };
}

describe("Lookahead", () => {
  it("hands the prepared resources to the claim of the same task (a hit)", async () => {
    const { lookahead, loads, finish } = harness();
    lookahead.prepare(task(1));
    await finish(1);
    expect(await lookahead.take(task(1))).toEqual({ queryId: 1, version: 0 });
    expect(loads).toEqual([1]);
    // Handed over once: a second claim of it downloads again.
    expect(await lookahead.take(task(1))).toBeNull();
  });

  it("waits for a download still under way when the claim comes", async () => {
    const { lookahead, finish } = harness();
    lookahead.prepare(task(1));
    const taken = lookahead.take(task(1));
    await finish(1);
    expect(await taken).toEqual({ queryId: 1, version: 0 });
  });

  it("answers null for another task (a miss) and keeps what it holds", async () => {
    const { lookahead, disposed, finish } = harness();
    lookahead.prepare(task(1));
    await finish(1);
    expect(await lookahead.take(task(2))).toBeNull();
    expect(disposed).toEqual([]);
    expect(lookahead.task?.query_id).toBe(1);
  });

  it("drops resources made for another superpixel map or an older mask version", async () => {
    const { lookahead, disposed, finish } = harness();
    lookahead.prepare(task(1));
    await finish(1);
    expect(await lookahead.take(task(1, { superpixel_map_id: 999 }))).toBeNull();
    expect(disposed).toEqual([1]);
    expect(lookahead.task).toBeNull();

    lookahead.prepare(task(3));
    await finish(3, 4); // the mask was at version 4 when downloaded
    expect(await lookahead.take(task(3, { mask_version: 5 }))).toBeNull();
    expect(disposed).toEqual([1, 3]);
  });

  it("a failed download is a miss, not an error", async () => {
    const { lookahead, pending, settle } = harness();
    lookahead.prepare(task(1));
    await settle();
    pending.get(1)?.reject(new Error("offline"));
    expect(await lookahead.take(task(1))).toBeNull();
  });

  it("does not download the same task twice", async () => {
    const { lookahead, loads, finish } = harness();
    lookahead.prepare(task(1));
    lookahead.prepare(task(1));
    await finish(1);
    lookahead.prepare(task(1));
    expect(loads).toEqual([1]);
    // A newer mask version of it is downloaded anew.
    lookahead.prepare(task(1, { mask_version: 1 }));
    await finish(1, 1);
    expect(loads).toEqual([1, 1]);
  });

  it("holds at most one task: the next download starts after the dropped one is freed", async () => {
    const { lookahead, loads, disposed, finish, peak, settle } = harness();
    lookahead.prepare(task(1));
    await settle();
    lookahead.prepare(task(2)); // 1 is still downloading
    await settle();
    expect(loads).toEqual([1]);
    await finish(1);
    expect(disposed).toEqual([1]);
    expect(loads).toEqual([1, 2]);
    await finish(2);
    lookahead.drop();
    await settle();
    expect(disposed).toEqual([1, 2]);
    expect(peak()).toBe(1);
  });
});

describe("QueriedRegions.restore", () => {
  it("rebuilds an index posted from a worker (arrays transferred) that answers as the original", () => {
    const built = QueriedRegions.build(gridMap(16, 12, 4), [9, 5, 2]);
    const { width, height, labels, editable, ids, slotOf, start, pixels, bounds } = built;
    const fields = { width, height, labels, editable, ids, slotOf, start, pixels, bounds };
    const expected = {
      slots: built.slotCount,
      at: Array.from({ length: 16 * 12 }, (_, index) => built.slotAt(index)),
      pixels: Array.from({ length: built.slotCount }, (_, slot) => Array.from(built.pixelsOf(slot))),
      bounds: structuredClone(bounds),
    };
    const buffers = [labels, editable, ids, slotOf, start, pixels].map((array) => array.buffer as ArrayBuffer);
    const posted = structuredClone(fields, { transfer: buffers });
    expect(built.labels.length).toBe(0); // moved, as postMessage moves them
    const restored = QueriedRegions.restore(posted);
    expect(restored).toBeInstanceOf(QueriedRegions);
    expect(restored.slotCount).toBe(expected.slots);
    expect(Array.from({ length: 16 * 12 }, (_, index) => restored.slotAt(index))).toEqual(expected.at);
    expect(Array.from({ length: restored.slotCount }, (_, slot) => Array.from(restored.pixelsOf(slot)))).toEqual(
      expected.pixels,
    );
    expect(restored.bounds).toEqual(expected.bounds);
  });
});
