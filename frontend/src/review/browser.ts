/**
 * The lead's image browser (/projects/:projectId/images): the project's images with where each
 * stands, filtered by round, state and annotator, a page at a time; an image opens in review
 * mode. The filters live in the address, so review mode can come back to the same page.
 */
import "./review.css";
import { ApiError } from "../api/client";
import { dashboardApi } from "../dashboard/api";
import { leadProject, projectNav } from "../dashboard/page";
import { h } from "../shell/dom";
import { frame } from "../shell/layout";
import { navigate } from "../shell/navigation";
import type { Page } from "../shell/router";
import { currentUser } from "../shell/session";
import { type BrowserImage, IMAGE_STATES, filterQuery, filtersFrom, reviewApi, stateLabel } from "./api";
import { PAGE_SIZE } from "./filters";

function tile(projectId: number, image: BrowserImage, back: string): HTMLElement {
  const who = image.annotator ? image.annotator.name || image.annotator.email : "—";
  return h(
    "li",
    { class: "image-tile", "data-image": image.image_id, "data-state": image.state },
    h(
      "a",
      { href: `/projects/${projectId}/review/${image.image_id}?${back}`, "data-link": true },
      h("img", { src: image.links.thumbnail, alt: "", loading: "lazy", width: 160, height: 120 }),
      h("span", { class: "image-name" }, image.filename),
    ),
    h(
      "span",
      { class: "image-meta" },
      h("span", { class: `state state-${image.state}` }, stateLabel(image.state)),
      image.round_number !== null ? ` · round ${image.round_number}` : "",
      ` · ${who}`,
    ),
  );
}

export const imagesPage: Page = async (root, params, query) => {
  const projectId = Number(params.projectId);
  const user = await currentUser();
  const project = await leadProject(root, projectId, user);
  if (!project) return;
  const filters = filtersFrom(query);
  const [rounds, members] = await Promise.all([reviewApi.rounds(projectId), dashboardApi.members(projectId)]);

  const select = (name: string, label: string, options: [string, string][], value: string): HTMLSelectElement => {
    const element = h(
      "select",
      { name, "aria-label": label },
      ...options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
    );
    element.addEventListener("change", () => {
      const next = new URLSearchParams(filterQuery({ ...filters, offset: 0, limit: undefined }));
      if (element.value) next.set(name, element.value);
      else next.delete(name);
      navigate(`/projects/${projectId}/images?${next.toString()}`, { replace: true });
    });
    return element;
  };
  const roundFilter = select(
    "round_id",
    "round",
    [["", "All rounds"], ...rounds.map((r): [string, string] => [String(r.id), `Round ${r.number}`])],
    String(filters.round_id ?? ""),
  );
  const stateFilter = select(
    "state",
    "state",
    [["", "Any state"], ...IMAGE_STATES.map((s): [string, string] => [s, stateLabel(s)])],
    filters.state ?? "",
  );
  const annotatorFilter = select(
    "annotator_id",
    "annotator",
    [["", "Anyone"], ...members.map((m): [string, string] => [String(m.user_id), m.name || m.email])],
    String(filters.annotator_id ?? ""),
  );

  const grid = h("ul", { class: "image-grid", "data-testid": "image-grid" });
  const summary = h("p", { class: "muted small", role: "status", "data-testid": "image-count" });
  const pager = h("nav", { class: "pager", "aria-label": "pages" });
  const status = h("p", { class: "error", role: "alert" });
  root.append(
    frame(
      user,
      h(
        "div",
        { class: "dashboard" },
        projectNav(project, "images"),
        h(
          "section",
          { class: "panel" },
          h("h2", {}, "Images"),
          h("div", { class: "filters" }, roundFilter, stateFilter, annotatorFilter),
          summary,
          grid,
          pager,
          status,
        ),
      ),
    ),
  );
  root.querySelector(".content")?.classList.add("wide");

  try {
    const page = await reviewApi.images(projectId, filters);
    const back = filterQuery({ ...filters, limit: undefined });
    grid.replaceChildren(...page.items.map((image) => tile(projectId, image, back)));
    const offset = filters.offset ?? 0;
    summary.textContent =
      page.total === 0
        ? "No image matches these filters."
        : `Images ${offset + 1}–${offset + page.items.length} of ${page.total}`;
    const go = (label: string, to: number, enabled: boolean): HTMLElement => {
      if (!enabled) return h("span", { class: "muted" }, label);
      const target = filterQuery({ ...filters, offset: to, limit: undefined });
      return h("a", { href: `/projects/${projectId}/images?${target}`, "data-link": true, class: "button" }, label);
    };
    pager.replaceChildren(
      go("← Previous", Math.max(0, offset - PAGE_SIZE), offset > 0),
      go("Next →", offset + PAGE_SIZE, offset + page.items.length < page.total),
    );
  } catch (error) {
    status.textContent = error instanceof ApiError ? error.detail : String(error);
  }
};
