/**
 * Review mode (/projects/:projectId/review/:imageId): the lead sees the submitted labels over
 * the image, drawn by the annotator's own layers (read-only: the asked superpixels outlined,
 * the rest dimmed), with the image's history, and accepts them or sends them back with a
 * comment for the annotator. Keyboard: A accepts, S sends back, N / P (or the arrows) open the
 * next / previous image under the browser's filters (shortcuts.ts).
 */
import "./review.css";
import { ApiError, api } from "../api/client";
import type { ProjectDetail } from "../api/types";
import { classLut } from "../annotator/colours";
import { decodeGreyPng } from "../annotator/png";
import { LayerStack } from "../annotator/render";
import { QueriedRegions } from "../annotator/superpixels";
import { fitView } from "../annotator/view";
import { leadProject, projectNav } from "../dashboard/page";
import { h } from "../shell/dom";
import { frame } from "../shell/layout";
import { navigate } from "../shell/navigation";
import type { Page } from "../shell/router";
import { currentUser } from "../shell/session";
import { type ReviewDetail, type ReviewRead, filterQuery, reviewApi, stateLabel } from "./api";
import { filtersFrom } from "./filters";
import { REVIEW_SHORTCUTS, neighbours, reviewAction } from "./shortcuts";

function reason(error: unknown): string {
  return error instanceof ApiError ? error.detail : error instanceof Error ? error.message : String(error);
}

/** Typing goes to the field, not to the shortcuts. */
function isTextField(element: Element | null): boolean {
  if (element instanceof HTMLInputElement) {
    return !["button", "checkbox", "radio", "submit", "reset", "range", "color"].includes(element.type);
  }
  return (
    element instanceof HTMLTextAreaElement ||
    element instanceof HTMLSelectElement ||
    (element instanceof HTMLElement && element.isContentEditable)
  );
}

function keyList(): HTMLElement {
  return h(
    "ul",
    { class: "review-keys small muted", "data-testid": "review-keys", "aria-label": "Keyboard shortcuts" },
    ...REVIEW_SHORTCUTS.map((shortcut) =>
      h(
        "li",
        {},
        ...shortcut.keys.flatMap((key, k) => [k > 0 ? " / " : null, h("kbd", {}, key)]),
        ` ${shortcut.label}`,
      ),
    ),
  );
}

function who(person: { name: string; email: string } | null | undefined): string {
  return person ? person.name || person.email : "someone";
}

function historyList(history: readonly ReviewRead[]): HTMLElement {
  if (history.length === 0) return h("p", { class: "muted small" }, "No decision yet.");
  return h(
    "ol",
    { class: "history", "data-testid": "history" },
    ...history.map((entry) =>
      h(
        "li",
        { "data-decision": entry.decision },
        h("strong", {}, entry.decision === "accepted" ? "Accepted" : "Sent back"),
        ` by ${who(entry.reviewer)}, ${new Date(entry.created_at).toLocaleString()} (version ${entry.mask_version})`,
        entry.comment ? h("p", { class: "small" }, entry.comment) : null,
      ),
    ),
  );
}

/** Draws the image, its mask and the asked superpixels into a read-only layer stack. */
async function labelledImage(project: ProjectDetail, detail: ReviewDetail): Promise<LayerStack> {
  const [bitmap, stored, superpixels] = await Promise.all([
    api.image(detail.links.image),
    api.mask(detail.links.mask),
    detail.superpixels ? api.superpixels(detail.superpixels) : Promise.resolve(null),
  ]);
  const layers = new LayerStack(detail.width, detail.height);
  layers.drawImage(bitmap);
  bitmap.close();
  const mask = (await decodeGreyPng(stored.png)).pixels;
  layers.paintMask(mask, classLut(project.classes), { x0: 0, y0: 0, x1: detail.width, y1: detail.height });
  if (superpixels) {
    const regions = QueriedRegions.build(superpixels, detail.superpixel_ids);
    layers.drawContext(regions);
  }
  layers.setMaskOpacity(0.6);
  return layers;
}

export const reviewPage: Page = async (root, params, query) => {
  const projectId = Number(params.projectId);
  const imageId = Number(params.imageId);
  const user = await currentUser();
  const project = await leadProject(root, projectId, user);
  if (!project) return;
  const filters = filtersFrom(query);
  const back = `/projects/${projectId}/images?${filterQuery({ ...filters, limit: undefined })}`;

  let detail: ReviewDetail;
  try {
    detail = await reviewApi.image(projectId, imageId);
  } catch (error) {
    root.append(frame(user, h("h1", {}, "Not found"), h("p", { class: "error", role: "alert" }, reason(error))));
    return;
  }

  const stage = h("div", { class: "review-stage", "data-testid": "review-stage", role: "img", "aria-label": `labels over ${detail.filename}` });
  const side = h("section", { class: "panel review-side", "aria-label": "review" });
  root.append(
    frame(
      user,
      h(
        "div",
        { class: "dashboard" },
        projectNav(project, "images"),
        h("p", {}, h("a", { href: back, "data-link": true }, "← Back to the images")),
        h("div", { class: "review" }, stage, side),
      ),
    ),
  );
  root.querySelector(".content")?.classList.add("wide");

  const layers = await labelledImage(project, detail);
  stage.append(layers.element);
  const fit = (): void => {
    const rect = stage.getBoundingClientRect();
    layers.setView(fitView(detail.width, detail.height, rect.width, rect.height));
  };
  fit();
  const resizes = new ResizeObserver(fit);
  resizes.observe(stage);

  let maskShown = true;
  const render = (): void => {
    const feedback = h("p", { class: "feedback small", role: "status" });
    const toggle = h("button", { type: "button", "aria-pressed": String(maskShown) }, maskShown ? "Hide labels" : "Show labels");
    toggle.addEventListener("click", () => {
      maskShown = !maskShown;
      layers.setMaskOpacity(maskShown ? 0.6 : 0);
      render();
    });
    const canAccept = detail.state === "submitted";
    const canSendBack = detail.state === "submitted" || detail.state === "accepted";
    const comment = h("textarea", { name: "comment", id: "review-comment", maxlength: 2000 });
    const accept = h("button", { type: "button", class: "primary", "data-action": "accept", disabled: !canAccept }, "Accept");
    const sendBack = h("button", { type: "button", "data-action": "send-back", disabled: !canSendBack }, "Send back");
    const decide = (decision: "accepted" | "sent_back"): void => {
      if (decision === "sent_back" && !comment.value.trim()) {
        feedback.textContent = "Say what to fix in the comment before sending the image back.";
        feedback.className = "feedback small error";
        comment.focus();
        return;
      }
      accept.disabled = sendBack.disabled = true;
      reviewApi
        .decide(projectId, imageId, decision, comment.value)
        .then(() => reviewApi.image(projectId, imageId))
        .then((fresh) => {
          detail = fresh;
          render();
          const done = side.querySelector<HTMLElement>('[role="status"]');
          if (done) {
            done.textContent = decision === "accepted" ? "Accepted." : `Sent back to ${who(detail.annotator)}.`;
            done.className = "feedback small ok";
          }
          void nextSubmitted(done);
        })
        .catch((error: unknown) => {
          feedback.textContent = reason(error);
          feedback.className = "feedback small error";
          accept.disabled = !canAccept;
          sendBack.disabled = !canSendBack;
        });
    };
    accept.addEventListener("click", () => decide("accepted"));
    sendBack.addEventListener("click", () => decide("sent_back"));
    side.replaceChildren(
      h("h1", {}, detail.filename),
      h(
        "p",
        { "data-testid": "review-state" },
        h("span", { class: `state state-${detail.state}` }, stateLabel(detail.state)),
        detail.round_number !== null ? ` · round ${detail.round_number}` : "",
        detail.annotator ? ` · labeled by ${who(detail.annotator)}` : "",
      ),
      h("div", { class: "actions" }, toggle),
      canSendBack
        ? h(
            "div",
            {},
            h("label", { for: "review-comment" }, "Comment for the annotator (required to send back)"),
            comment,
            h("div", { class: "actions" }, accept, sendBack),
          )
        : h("p", { class: "muted small" }, "Only submitted images can be reviewed."),
      feedback,
      h("h2", {}, "History"),
      historyList(detail.history),
      h("h2", {}, "Keys"),
      keyList(),
    );
  };

  /** Offers the next image waiting for review under the same round and annotator filters. */
  async function nextSubmitted(where: HTMLElement | null): Promise<void> {
    const next = await reviewApi.images(projectId, { ...filters, state: "submitted", offset: 0, limit: 1 });
    const image = next.items[0];
    if (!where || !image) return;
    const target = filterQuery({ ...filters, limit: undefined });
    where.append(" ", h("a", { href: `/projects/${projectId}/review/${image.image_id}?${target}`, "data-link": true }, "Next submitted image →"));
  }

  /** Opens the neighbouring image in the browser's order under the same filters. */
  let moving = false;
  async function go(direction: "next" | "previous"): Promise<void> {
    if (moving) return;
    moving = true;
    const status = side.querySelector<HTMLElement>('[role="status"]');
    try {
      const around = await neighbours(
        (offset, limit) => reviewApi.images(projectId, { ...filters, offset, limit }),
        imageId,
      );
      const target = around[direction];
      if (target === null) {
        if (status) {
          status.textContent = `No ${direction} image under these filters.`;
          status.className = "feedback small";
        }
        return;
      }
      navigate(`/projects/${projectId}/review/${target}?${filterQuery({ ...filters, limit: undefined })}`);
    } catch (error) {
      if (status) {
        status.textContent = reason(error);
        status.className = "feedback small error";
      }
    } finally {
      moving = false;
    }
  }

  const onKey = (event: KeyboardEvent): void => {
    if (event.defaultPrevented || event.repeat) return;
    const active = document.activeElement;
    const action = reviewAction({
      key: event.key,
      ctrlKey: event.ctrlKey,
      metaKey: event.metaKey,
      altKey: event.altKey,
      inTextField: isTextField(active),
    });
    if (action === null) return;
    event.preventDefault();
    if (action === "leave-field") {
      if (active instanceof HTMLElement) active.blur();
    } else if (action === "accept" || action === "send-back") {
      const button = side.querySelector<HTMLButtonElement>(`[data-action="${action}"]`);
      if (button && !button.disabled) button.click();
    } else {
      void go(action);
    }
  };

  render();
  document.addEventListener("keydown", onKey);
  return () => {
    resizes.disconnect();
    document.removeEventListener("keydown", onKey);
  };
};
