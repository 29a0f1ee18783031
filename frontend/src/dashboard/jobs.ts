/** Live jobs and the round actions: start the next round, close labeling, run the oracle,
 * retry a failed job. */
import { ApiError } from "../api/client";
import { h } from "../shell/dom";
import { type CurrentRound, dashboardApi, type Jobs, type JobRead } from "./api";
import { formatEta, formatPercent } from "./format";

const ACTIVE = new Set(["pending", "training", "scoring", "querying"]);

export function isBusy(jobs: Jobs): boolean {
  return (
    jobs.jobs.some((job) => job.status === "queued" || job.status === "running") ||
    (jobs.current_round !== null && ACTIVE.has(jobs.current_round.status))
  );
}

/** What changes when a job ends or the round moves on (progress alone does not). */
export function jobsState(jobs: Jobs): string {
  const round = jobs.current_round;
  return JSON.stringify([
    round ? [round.id, round.status, round.queries_done] : null,
    jobs.jobs.map((job) => [job.id, job.status]),
  ]);
}

function describeError(error: unknown): string {
  return error instanceof ApiError ? error.detail : String(error);
}

/**
 * A job as a lead reads it: by round number and stage ("round 2 · training"), not by job id
 * ("round #5"). `roundNumbers` maps round ids to numbers; unknown rounds fall back to the id.
 */
export function jobName(job: JobRead, roundNumbers: ReadonlyMap<number, number>, current: CurrentRound | null): string {
  if (job.round_id === null) return job.kind === "ingest" ? "image upload" : `${job.kind} (job ${job.id})`;
  const number = roundNumbers.get(job.round_id) ?? (current?.id === job.round_id ? current.number : null);
  const round = number === null ? `round (job ${job.id})` : `round ${number}`;
  if (job.kind !== "round") return `${round} · ${job.kind}`;
  // The round job trains, scores and queries; while it runs the round's status names the stage.
  const stage = job.status === "running" && current?.id === job.round_id && ACTIVE.has(current.status) ? current.status : null;
  return stage && stage !== "pending" ? `${round} · ${stage}` : round;
}

function jobRow(
  job: JobRead,
  projectId: number,
  act: (work: () => Promise<unknown>) => void,
  name: string,
): HTMLElement {
  const retry =
    job.status === "failed"
      ? h("button", { type: "button", "data-action": "retry", "data-job": job.id }, "Retry")
      : null;
  retry?.addEventListener("click", () => act(() => dashboardApi.retryJob(projectId, job.id)));
  return h(
    "li",
    { class: `job status-${job.status}`, "data-job": job.id, "data-kind": job.kind, "data-status": job.status },
    h(
      "div",
      { class: "job-head" },
      h("strong", { title: `job ${job.id}` }, name),
      h("span", { class: `pill status-${job.status}` }, job.status),
      h("span", { class: "meter job-meter" }, h("span", { style: `width:${(job.progress * 100).toFixed(1)}%` })),
      h("span", { class: "num", "data-testid": "job-progress" }, formatPercent(job.progress, 0)),
      job.status === "running" ? h("span", { class: "muted" }, `ETA ${formatEta(job.eta_at, Date.now())}`) : null,
      retry,
    ),
    job.message ? h("div", { class: "muted small" }, job.message) : null,
    job.error ? h("details", {}, h("summary", { class: "error" }, "error"), h("pre", { class: "job-error" }, job.error)) : null,
  );
}

export function jobsPanel(
  jobs: Jobs,
  projectId: number,
  refresh: () => void,
  status: HTMLElement,
  roundNumbers: ReadonlyMap<number, number> = new Map(),
): HTMLElement {
  const act = (work: () => Promise<unknown>): void => {
    status.textContent = "";
    work()
      .then(refresh)
      .catch((error: unknown) => {
        status.textContent = describeError(error);
        refresh();
      });
  };
  const current = jobs.current_round;
  const start = h(
    "button",
    {
      type: "button",
      class: "primary",
      "data-action": "start-round",
      disabled: !jobs.can_start_round,
      title: jobs.can_start_round ? "Train, score and query the next round" : "A round is still running or labeling",
    },
    "Start next round",
  );
  start.addEventListener("click", () => {
    start.disabled = true;
    act(() => dashboardApi.startRound(projectId));
  });
  const actions: HTMLElement[] = [start];
  if (current?.status === "labeling") {
    const close = h("button", { type: "button", "data-action": "close-round" }, `Close round ${current.number}`);
    close.addEventListener("click", () => act(() => dashboardApi.closeRound(projectId, current.id)));
    actions.push(close);
    if (jobs.oracle_available) {
      for (const mode of ["exact", "dominant"] as const) {
        const oracle = h(
          "button",
          { type: "button", "data-action": `oracle-${mode}`, title: `Answer the open queries from ground truth (${mode})` },
          `Oracle (${mode})`,
        );
        oracle.addEventListener("click", () => {
          oracle.disabled = true;
          act(() => dashboardApi.oracle(projectId, current.id, mode));
        });
        actions.push(oracle);
      }
    }
  }
  return h(
    "section",
    { class: "panel", "data-panel": "jobs" },
    h("h2", {}, "Rounds and jobs"),
    h(
      "p",
      { "data-testid": "current-round" },
      current
        ? `Round ${current.number} is ${current.status}` +
            (current.queries ? ` · ${current.queries_done} of ${current.queries} queried images labeled` : "")
        : "No round yet.",
    ),
    h("div", { class: "actions" }, ...actions),
    status,
    jobs.jobs.length
      ? h("ul", { class: "jobs" }, ...jobs.jobs.slice(0, 8).map((job) => jobRow(job, projectId, act, jobName(job, roundNumbers, current))))
      : h("p", { class: "muted" }, "No jobs yet."),
  );
}
