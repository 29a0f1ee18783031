/**
 * The look-ahead: while the annotator works on a task, the task tasks/next will most likely
 * hand them next (GET .../tasks/upcoming, no lease) is downloaded and decoded, so that a
 * submit opens it without waiting for its photo. Nothing is reserved: if someone else takes
 * it, the claim hands out another task and that one is downloaded as before.
 */
import type { components } from "../api/schema";
import type { GreyImage } from "../annotator/png";
import { type QueriedRegionFields, QueriedRegions, type SuperpixelMap } from "../annotator/superpixels";

export type UpcomingTask = components["schemas"]["UpcomingTask"];

/** What tells two tasks' downloads apart: a prepared one serves a claim only if all match. */
export interface TaskIdentity {
  query_id: number;
  image_id: number;
  superpixel_map_id: number;
  mask_version: number;
}

function sameQuery(a: TaskIdentity, b: TaskIdentity): boolean {
  return a.query_id === b.query_id && a.image_id === b.image_id && a.superpixel_map_id === b.superpixel_map_id;
}

/**
 * At most one task's resources, downloaded ahead. `load` makes them (`R.version`: the mask
 * version they hold), `dispose` frees a set that will not be used (an ImageBitmap's memory).
 *
 * Bounded to one task: a new `prepare` drops the held one, and its download starts only once
 * the previous download has finished (and was disposed), so two never sit in memory at once.
 */
export class Lookahead<T extends TaskIdentity, R extends { version: number }> {
  private held: { task: T; ready: Promise<R | null> } | null = null;
  /** The last download started, settled or not: the next one waits for it. */
  private last: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly load: (task: T) => Promise<R>,
    private readonly dispose: (resources: R) => void,
  ) {}

  /** The task being prepared (or ready), if any. */
  get task(): T | null {
    return this.held?.task ?? null;
  }

  /** Downloads `task` ahead unless it is the one held already (same query, map, mask version). */
  prepare(task: T): void {
    const held = this.held;
    if (held && sameQuery(held.task, task) && held.task.mask_version === task.mask_version) return;
    this.drop();
    const ready = this.last.then(() => this.load(task)).then(
      (resources) => resources,
      () => null, // a failed download is no prefetch: the claim downloads again and reports
    );
    this.last = ready;
    this.held = { task, ready };
  }

  /** Forgets the held task; its resources are disposed once (or as soon as) they are in. */
  drop(): void {
    const held = this.held;
    this.held = null;
    void held?.ready.then((resources) => resources && this.dispose(resources));
  }

  /**
   * The prepared resources for `claimed`, a task just handed out (waiting for a download
   * still under way), or null: prepared for another task, for an older superpixel map or
   * mask version, or failed. They are handed over once; a stale set is dropped, one for
   * another query is kept (the claim may have returned an earlier lease first).
   */
  async take(claimed: TaskIdentity): Promise<R | null> {
    const held = this.held;
    if (!held) return null;
    if (held.task.query_id !== claimed.query_id) return null;
    this.held = null;
    const resources = await held.ready;
    if (!resources) return null;
    if (!sameQuery(held.task, claimed) || resources.version !== claimed.mask_version) {
      this.dispose(resources);
      return null;
    }
    return resources;
  }
}

/** What `prepareOffThread` hands back: as fetchResources in label.ts makes it. */
export interface Prepared {
  superpixels: SuperpixelMap;
  regions: QueriedRegions;
  stored: { version: number };
  mask: GreyImage;
}

/**
 * Downloads a task's superpixel map and mask, inflates and indexes the map and decodes the
 * mask in a worker (lookahead.worker.ts): a download ahead must not stall the strokes of the
 * task on screen.
 */
export function prepareOffThread(links: { superpixels: string; mask: string }, queriedIds: number[]): Promise<Prepared> {
  const worker = new Worker(new URL("./lookahead.worker.ts", import.meta.url), { type: "module" });
  type Answer = { count: number; fields: QueriedRegionFields; mask: GreyImage; version: number } | { error: string };
  return new Promise<Prepared>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<Answer>) => {
      worker.terminate();
      const answer = event.data;
      if ("error" in answer) {
        reject(new Error(answer.error));
        return;
      }
      const regions = QueriedRegions.restore(answer.fields);
      const { width, height, labels } = regions;
      resolve({
        superpixels: { width, height, count: answer.count, labels },
        regions,
        stored: { version: answer.version },
        mask: answer.mask,
      });
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(event.message || "the look-ahead worker failed"));
    };
    worker.postMessage({ superpixelsLink: links.superpixels, maskLink: links.mask, queriedIds });
  });
}
