/**
 * The lead dashboard (/projects/:projectId/dashboard): budget, learning curve, jobs with the
 * round actions, rounds table, class balance and team. While a job runs only the cheap jobs
 * part is polled (every 2 s); the whole dashboard (class balance decodes every mask) is
 * fetched when a job or the round changes state, and every 30 s otherwise. Annotators see a
 * 403 message instead (the API refuses them too).
 */
import { ApiError, api } from "../api/client";
import type { ProjectDetail, User } from "../api/types";
import { h } from "../shell/dom";
import { frame } from "../shell/layout";
import type { Page } from "../shell/router";
import { currentUser } from "../shell/session";
import { dashboardApi, type Dashboard, type Jobs } from "./api";
import { LearningCurveChart } from "./chart";
import { isBusy, jobsPanel, jobsState } from "./jobs";
import { prefillPanel } from "./prefill";
import { budgetPanel, classBalancePanel, curveDetails, roundsTable, teamTable } from "./sections";

const FAST_POLL_MS = 2000;
const SLOW_POLL_MS = 30000;

export function projectNav(project: ProjectDetail, active: "dashboard" | "manage" | "images"): HTMLElement {
  const link = (path: string, label: string, name: string): HTMLElement =>
    h("a", { href: `/projects/${project.id}/${path}`, "data-link": true, class: `tab${name === active ? " active" : ""}` }, label);
  return h(
    "nav",
    { class: "project-nav" },
    h("h1", {}, project.name),
    h("span", { class: "spacer" }),
    link("dashboard", "Dashboard", "dashboard"),
    link("images", "Images", "images"),
    link("manage", "Manage", "manage"),
    link("label", "Label", "label"),
  );
}

/** The project when the caller leads it; otherwise a refusal page is shown and null returned. */
export async function leadProject(root: HTMLElement, projectId: number, user: User | null): Promise<ProjectDetail | null> {
  let project: ProjectDetail;
  try {
    project = await api.project(projectId);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      root.append(frame(user, h("h1", {}, "Not found"), h("p", { class: "muted" }, `No project ${projectId}.`)));
      return null;
    }
    throw error;
  }
  if (project.role !== "lead") {
    root.append(
      frame(
        user,
        h(
          "div",
          { class: "forbidden", "data-testid": "forbidden" },
          h("h1", {}, "403 · Leads only"),
          h("p", {}, `Only a lead of ${project.name} can open its dashboard.`),
          h("a", { href: `/projects/${project.id}/label`, "data-link": true, class: "button primary" }, "Go labeling"),
        ),
      ),
    );
    return null;
  }
  return project;
}

export const dashboardPage: Page = async (root, params) => {
  const projectId = Number(params.projectId);
  const user = await currentUser();
  const project = await leadProject(root, projectId, user);
  if (!project) return;

  const status = h("p", { class: "error", role: "alert" });
  const budget = h("div");
  const chartHost = h("div", { class: "chart", "data-testid": "learning-curve" });
  const curveText = h("div");
  const jobs = h("div");
  const rounds = h("div");
  const balance = h("div");
  const team = h("div");
  const prefill = h("div");
  const updated = h("span", { class: "muted small", "data-testid": "updated" });
  root.append(
    frame(
      user,
      h(
        "div",
        { class: "dashboard" },
        projectNav(project, "dashboard"),
        budget,
        h(
          "div",
          { class: "two-columns" },
          h("section", { class: "panel", "data-panel": "learning-curve" }, h("h2", {}, "Learning curve"), chartHost, curveText),
          jobs,
        ),
        rounds,
        // The team table has nine columns: it gets the full width (a half-column cut it).
        balance,
        team,
        prefill,
        updated,
      ),
    ),
  );
  root.querySelector(".content")?.classList.add("wide");

  const chart = new LearningCurveChart(chartHost);
  let timer: number | undefined;
  let alive = true;
  let inFlight = false;

  /** Round id -> number, from the last full fetch (jobs name their round by number). */
  const roundNumbers = new Map<number, number>();
  const renderJobs = (state: Jobs): void => {
    jobs.replaceChildren(jobsPanel(state, projectId, () => void refresh(true), status, roundNumbers));
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  };
  const render = (board: Dashboard): void => {
    for (const round of board.rounds) roundNumbers.set(round.id, round.number);
    budget.replaceChildren(budgetPanel(board.budget));
    chart.update(board.learning_curve);
    curveText.replaceChildren(curveDetails(board.learning_curve));
    renderJobs(board.jobs);
    rounds.replaceChildren(roundsTable(board.rounds));
    balance.replaceChildren(classBalancePanel(board.class_balance));
    team.replaceChildren(teamTable(board.team));
    prefill.replaceChildren(prefillPanel(board.prefill));
  };

  let lastState = "";
  let lastFull = 0;
  /** Polls the jobs; fetches everything when asked, when their state changed, or when stale. */
  async function refresh(full = false): Promise<void> {
    if (!alive || inFlight) return;
    inFlight = true;
    window.clearTimeout(timer);
    let delay = SLOW_POLL_MS;
    try {
      let state: Jobs;
      if (full || Date.now() - lastFull >= SLOW_POLL_MS) {
        const board = await dashboardApi.dashboard(projectId);
        if (!alive) return;
        render(board);
        state = board.jobs;
        lastFull = Date.now();
      } else {
        state = await dashboardApi.jobs(projectId);
        if (!alive) return;
        if (jobsState(state) !== lastState) {
          // A job ended or the round moved on: every figure may have changed.
          const board = await dashboardApi.dashboard(projectId);
          if (!alive) return;
          render(board);
          state = board.jobs;
          lastFull = Date.now();
        } else renderJobs(state);
      }
      lastState = jobsState(state);
      if (isBusy(state)) delay = FAST_POLL_MS;
    } catch (error) {
      status.textContent = error instanceof ApiError ? error.detail : String(error);
    } finally {
      inFlight = false;
      if (alive) timer = window.setTimeout(() => void refresh(), delay);
    }
  }

  await refresh(true);
  return () => {
    alive = false;
    window.clearTimeout(timer);
    chart.destroy();
  };
};
