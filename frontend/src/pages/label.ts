/**
 * Labeling: `/label` finds a project with work, `/projects/:id/label` runs the workspace on
 * the next task there, one task after the other.
 */
import { ApiError, api } from "../api/client";
import type { ProjectDetail, Task } from "../api/types";
import { decodeGreyPng } from "../annotator/png";
import { QueriedRegions } from "../annotator/superpixels";
import { isLargeImage, previewSize } from "../annotator/viewport";
import { type Carry, type TaskBundle, Workspace } from "../annotator/workspace";
import { h } from "../shell/dom";
import { accountControls, frame } from "../shell/layout";
import { navigate } from "../shell/navigation";
import type { Page } from "../shell/router";
import { currentUser } from "../shell/session";
import { switchedOn } from "../shell/switches";
import { Lookahead, prepareOffThread, type UpcomingTask } from "./lookahead";

export const findWorkPage: Page = async (root) => {
  const user = await currentUser();
  const projects = await api.projects();
  for (const project of projects) {
    const task = await api.nextTask(project.id);
    if (task) {
      navigate(`/projects/${project.id}/label`, { replace: true });
      return;
    }
  }
  root.append(
    frame(
      user,
      h("h1", {}, "Nothing to label right now"),
      h(
        "p",
        { class: "muted", "data-empty": "all" },
        projects.length === 0
          ? "You are not a member of any project yet."
          : "None of your projects has an image waiting. New work appears when the next round's queries are ready.",
      ),
      h("a", { href: "/label", "data-link": true, class: "button" }, "Check again"),
    ),
  );
};

/** Query ids this annotator skipped, per project, for this browser tab. */
function skippedKey(projectId: number): string {
  return `tessera.skipped.${projectId}`;
}

function loadSkipped(projectId: number): number[] {
  try {
    const parsed: unknown = JSON.parse(sessionStorage.getItem(skippedKey(projectId)) ?? "[]");
    return Array.isArray(parsed) ? parsed.filter((id): id is number => typeof id === "number") : [];
  } catch {
    return [];
  }
}

function storeSkipped(projectId: number, ids: number[]): void {
  sessionStorage.setItem(skippedKey(projectId), JSON.stringify(ids.slice(-200)));
}

/** What a task's downloads need to know (a claimed task, or an upcoming one: lookahead.ts). */
type BundleSource = Pick<Task, "width" | "height" | "superpixel_ids" | "links">;
/** A task's downloaded and decoded resources. */
type TaskResources = Omit<TaskBundle, "project" | "task">;

async function fetchResources(task: BundleSource, offThread = false): Promise<TaskResources> {
  // A large image shows its downscaled copy first; the workspace decodes the full one once
  // it is on screen (viewport.ts).
  const photo = isLargeImage(task.width, task.height)
    ? api
        .imagePreview(task.links, previewSize(task.width, task.height))
        .then(({ preview, full }) => ({ image: preview, fullImage: full }))
    : api.image(task.links.image).then((image) => ({ image }));
  // The superpixels are indexed and the mask decoded as each arrives, while the photo is
  // still downloading or decoding (a pass over every pixel each: ~0.1 s at 12 Mpx); for a
  // task downloaded ahead, in a worker, off the main thread the annotator paints on.
  const prepared = offThread ? prepareOffThread(task.links, task.superpixel_ids) : null;
  const indexed =
    prepared ??
    api
      .superpixels(task.links.superpixels)
      .then((superpixels) => ({ superpixels, regions: QueriedRegions.build(superpixels, task.superpixel_ids) }));
  const decoded =
    prepared ?? api.mask(task.links.mask).then(async (stored) => ({ stored, mask: await decodeGreyPng(stored.png) }));
  const [{ image, ...preview }, { superpixels, regions }, { stored, mask }] = await Promise.all([
    photo,
    indexed,
    decoded,
  ]);
  if (mask.width !== task.width || mask.height !== task.height) {
    throw new Error(`The stored mask is ${mask.width}x${mask.height}, the image ${task.width}x${task.height}.`);
  }
  return { image, ...preview, superpixels, regions, mask: mask.pixels, version: stored.version };
}

async function fetchBundle(project: ProjectDetail, task: Task): Promise<TaskBundle> {
  return { project, task, ...(await fetchResources(task)) };
}

/** Runs `work` when the browser is idle (or after `timeout` ms at the latest). */
function whenIdle(work: () => void, timeout = 2_000): () => void {
  if (typeof requestIdleCallback === "function") {
    const handle = requestIdleCallback(work, { timeout });
    return () => cancelIdleCallback(handle);
  }
  const handle = window.setTimeout(work, 200);
  return () => window.clearTimeout(handle);
}

export const labelPage: Page = async (root, params) => {
  const projectId = Number(params.projectId);
  const user = await currentUser();
  const project = await api.project(projectId);
  const container = h("div", { class: "label-page" });
  root.append(container);
  let workspace: Workspace | null = null;
  let closed = false;
  let skipped = loadSkipped(projectId);
  let notice: string | null = null;
  let heartbeat: number | undefined;
  /** The task submitted last, which the annotator may reopen ("previous image"). */
  let previous: Task | null = null;
  // The task tasks/next will most likely hand out after the open one, downloaded ahead.
  const lookahead = new Lookahead<UpcomingTask, TaskResources>(
    (upcoming) => fetchResources(upcoming, true),
    (resources) => resources.image.close(),
  );
  let cancelIdle = (): void => undefined;
  /** Bumped to ignore an upcoming answer asked before a submit claimed the next task. */
  let lookGeneration = 0;
  const stopLookAhead = (): void => {
    cancelIdle();
    lookGeneration += 1;
  };

  /** Asks which task comes after `current` and downloads it ahead, once the browser is idle. */
  const lookAhead = (current: Task): void => {
    stopLookAhead();
    if (!switchedOn("lookahead")) return;
    const generation = lookGeneration;
    cancelIdle = whenIdle(() => {
      void api
        .upcomingTasks(projectId, [...skipped, current.query_id])
        .then(([upcoming]) => {
          if (closed || workspace === null || generation !== lookGeneration) return;
          if (upcoming) lookahead.prepare(upcoming);
          else lookahead.drop();
        })
        .catch(() => undefined); // only a head start: the claim downloads what it needs
    });
  };

  /** A claimed task's bundle: from the look-ahead when it prepared this very task. */
  const bundleFor = async (task: Task): Promise<TaskBundle> => {
    const ready = await lookahead.take(task);
    if (ready) {
      performance.mark(`tessera:lookahead-hit:${task.query_id}`);
      return { project, task, ...ready };
    }
    return fetchBundle(project, task);
  };

  const show = (...content: (Node | string)[]): void => {
    window.clearInterval(heartbeat);
    workspace?.destroy();
    workspace = null;
    container.replaceChildren(frame(user, ...content));
  };

  // Keeps the lease of the open task while the annotator works on it: asking for the next
  // task returns (and extends) the caller's own lease first.
  const keepLease = (task: Task): void => {
    window.clearInterval(heartbeat);
    const leaseMs = Date.parse(task.lease_expires_at) - Date.now();
    const every = Math.max(30_000, leaseMs / 3);
    let lastBeat = performance.now();
    heartbeat = window.setInterval(() => {
      const current = workspace;
      if (!current || current.lastInput < lastBeat) return; // idle: let the lease run out
      lastBeat = performance.now();
      lookAhead(task); // someone may have taken the task downloaded ahead meanwhile
      void api
        .nextTask(projectId, skipped)
        .then(async (renewed) => {
          if (renewed?.query_id === task.query_id || workspace !== current) return;
          if (renewed) await api.releaseTask(projectId, renewed.query_id);
          current.notify(
            "Your reservation of this image ran out and it may be someone else's now; " +
              "submitting can meet their save.",
          );
        })
        .catch(() => undefined);
    }, every);
  };

  // While a submit is being saved, the next task is already claimed and downloaded, so that
  // it shows as soon as the save is accepted. A failed save gives the prefetched lease back.
  let prefetched: Promise<{ task: Task; bundle: Promise<TaskBundle> } | null> | null = null;

  const prefetch = (current: Task): void => {
    stopLookAhead();
    prefetched = api
      .nextTask(projectId, [...skipped, current.query_id])
      .then((task) => {
        if (!task) return null;
        const bundle = bundleFor(task);
        bundle.catch(() => undefined); // awaited (and reported) when it is used
        return { task, bundle };
      })
      .catch(() => null);
  };

  const cancelPrefetch = (current: Task): void => {
    const pending = prefetched;
    prefetched = null;
    void (pending ?? Promise.resolve(null))
      .then(async (found) => {
        if (found && found.task.query_id !== current.query_id) {
          await api.releaseTask(projectId, found.task.query_id).catch(() => undefined);
        }
      })
      // The claim used up what was downloaded ahead; once its lease is given back, that
      // task is the upcoming one again.
      .then(() => lookAhead(current));
  };

  const afterSubmit = async (): Promise<void> => {
    const pending = prefetched;
    prefetched = null;
    const found = pending ? await pending : null;
    if (!found) return next();
    try {
      await open(found.task, null, await found.bundle);
    } catch {
      await next();
    }
  };

  /**
   * Reopens the task submitted last: its query is done, so there is no lease to keep; its
   * round may have closed meanwhile, which the save then reports (409).
   */
  const back = async (current: Task, reopen: Task): Promise<void> => {
    cancelPrefetch(current);
    try {
      await api.releaseTask(projectId, current.query_id);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 403) throw error;
    }
    previous = null;
    await open(reopen, null, undefined, true);
  };

  const open = async (task: Task, carry: Carry | null, ready?: TaskBundle, reopened = false): Promise<void> => {
    if (!ready) {
      container.replaceChildren(h("div", { class: "loading", "data-loading": task.query_id }, "Loading image…"));
    }
    const bundle = ready ?? (await bundleFor(task));
    if (closed) return;
    performance.mark(`tessera:fetched:${task.query_id}`);
    workspace?.destroy();
    workspace = new Workspace(
      bundle,
      {
        submitting: () => prefetch(task),
        submitFailed: () => cancelPrefetch(task),
        submitted: () => {
          previous = task;
          void afterSubmit();
        },
        skip: () => (reopened ? void next() : void skip(task)),
        ...(previous && !reopened
          ? { previous: ((reopen: Task) => () => void back(task, reopen).catch(fail))(previous) }
          : {}),
        reload: (reloadCarry) => void open(task, reloadCarry, undefined, reopened).catch(fail),
        next: () => void next(),
        ...(user ? { account: accountControls(user) } : {}),
      },
      carry,
    );
    container.replaceChildren();
    workspace.mount(container);
    if (reopened) window.clearInterval(heartbeat);
    else keepLease(task);
    if (!reopened) lookAhead(task);
    if (notice) {
      workspace.notify(notice);
      notice = null;
    }
  };

  const next = async (): Promise<void> => {
    try {
      let task = await api.nextTask(projectId, skipped);
      if (!task && skipped.length > 0) {
        // Only skipped images are left: offer them again, oldest skip first.
        task = await api.nextTask(projectId);
      }
      if (closed) return;
      if (!task) {
        show(
          h("h1", {}, project.name),
          h(
            "p",
            { class: "muted", "data-empty": projectId },
            "Nothing to label here right now. New images arrive when the next round's queries are ready.",
          ),
          h("a", { href: `/projects/${projectId}/label`, "data-link": true, class: "button" }, "Check again"),
        );
        return;
      }
      const returned = task.query_id;
      if (skipped.includes(returned)) {
        skipped = skipped.filter((id) => id !== returned);
        storeSkipped(projectId, skipped);
        notice = "No other image is waiting; here is one you skipped.";
      }
      await open(task, null);
    } catch (error) {
      fail(error);
    }
  };

  const skip = async (task: Task): Promise<void> => {
    skipped = [...skipped.filter((id) => id !== task.query_id), task.query_id];
    storeSkipped(projectId, skipped);
    try {
      await api.releaseTask(projectId, task.query_id);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 403) throw error;
    }
    await next();
  };

  function fail(error: unknown): void {
    if (error instanceof ApiError && error.status === 401) return;
    show(
      h("h1", {}, "Something went wrong"),
      h("p", { class: "error", role: "alert" }, error instanceof Error ? error.message : String(error)),
      h("a", { href: `/projects/${projectId}/label`, "data-link": true, class: "button" }, "Try again"),
    );
  }

  void next();
  return () => {
    closed = true;
    stopLookAhead();
    lookahead.drop();
    window.clearInterval(heartbeat);
    workspace?.destroy();
    workspace = null;
  };
};
