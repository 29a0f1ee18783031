/**
 * The workspace's controls around the canvas: the top bar (progress, time, clicks, draft,
 * skip, submit, help), the toolbar (tools, brush size, class palette, view toggles) and the
 * shortcut overlay. Buttons call back; the workspace owns the state.
 */
import type { LabelClass, ProjectDetail, Task } from "../api/types";
import { h } from "../shell/dom";
import { heatGradientCss } from "./colours";
import { type Action, GESTURES, SHORTCUTS } from "./shortcuts";

export type Tool = "fill" | "brush" | "eraser";

export type StatName = "progress" | "time" | "clicks" | "draft" | "brush";

export interface Chrome {
  topbar: HTMLElement;
  toolbar: HTMLElement;
  stats: Record<StatName, HTMLElement>;
  toolButtons: Map<Tool, HTMLButtonElement>;
  paletteButtons: HTMLButtonElement[];
}

export interface ChromeCallbacks {
  action(action: Action, slot?: number): void;
  tool(tool: Tool): void;
}

export function buildChrome(
  project: ProjectDetail,
  task: Task,
  classes: readonly LabelClass[],
  callbacks: ChromeCallbacks,
  account: HTMLElement | null,
  hasPrevious = false,
  hasPrediction = false,
): Chrome {
  const stat = (name: StatName, title: string): HTMLElement =>
    h("span", { class: `stat stat-${name}`, "data-stat": name, title });
  const button = (action: Action, label: string, title: string, kind: string): HTMLButtonElement => {
    const node = h("button", { type: "button", class: kind, "data-action": action, title }, label);
    node.addEventListener("click", () => callbacks.action(action));
    return node;
  };
  const stats: Record<StatName, HTMLElement> = {
    progress: stat("progress", "Queried superpixels with every pixel labeled"),
    time: stat("time", "Time on this image (idle gaps count at most a minute)"),
    clicks: stat("clicks", "Clicks and strokes on this image"),
    draft: stat("draft", "Unsaved edits are kept on this device"),
    brush: h("span", { class: "brush-size", "data-stat": "brush" }),
  };
  const topbar = h(
    "header",
    { class: "topbar" },
    h("a", { href: "/", "data-link": true, class: "brand" }, "Tessera"),
    h("h1", { class: "crumb" }, `${project.name} · round ${task.round_number} · image ${task.image_id}`),
    stats.progress,
    stats.time,
    stats.clicks,
    stats.draft,
    h("span", { class: "spacer" }),
    hasPrevious ? button("previous", "◀ Previous", "Reopen the image you just submitted (P)", "ghost") : null,
    button("skip", "Skip", "Skip (S)", "ghost"),
    button("submit", "Submit ⏎", "Submit and next (Enter)", "primary"),
    button("help", "?", "Shortcuts (?)", "ghost"),
  );

  const toolButtons = new Map<Tool, HTMLButtonElement>();
  const toolButton = (tool: Tool, label: string, key: string): HTMLButtonElement => {
    const node = h(
      "button",
      { type: "button", class: "tool", "data-tool": tool, title: `${label} (${key})` },
      h("span", { class: "tool-label" }, label),
      h("kbd", {}, key),
    );
    node.addEventListener("click", () => callbacks.tool(tool));
    toolButtons.set(tool, node);
    return node;
  };
  const palette = h("div", { class: "palette", role: "radiogroup", "aria-label": "Label class" });
  const paletteButtons = classes.map((labelClass, slot) => {
    const node = h(
      "button",
      {
        type: "button",
        class: "swatch",
        role: "radio",
        "data-class-index": labelClass.index,
        title: `${labelClass.name}${slot < 9 ? ` (${slot + 1})` : ""}`,
      },
      h("span", { class: "chip", style: `background:${labelClass.colour}` }),
      h("span", { class: "swatch-name" }, labelClass.name),
      slot < 9 ? h("kbd", {}, String(slot + 1)) : null,
    );
    node.addEventListener("click", () => callbacks.action("class", slot));
    palette.append(node);
    return node;
  });
  if (classes.length === 0) {
    palette.append(h("p", { class: "muted" }, "This project has no label classes yet; a lead adds them."));
  }
  const toggle = (action: Action, label: string, key: string): HTMLButtonElement => {
    const node = h(
      "button",
      { type: "button", class: "toggle", "data-action": action, title: `${label} (${key})` },
      h("span", {}, label),
      h("kbd", {}, key),
    );
    node.addEventListener("click", () => callbacks.action(action));
    return node;
  };
  const toolbar = h(
    "aside",
    { class: "toolbar" },
    h("h3", {}, "Tools"),
    toolButton("fill", "Fill", "G"),
    toolButton("brush", "Brush", "B"),
    toolButton("eraser", "Eraser", "E"),
    predictionButton(hasPrediction, callbacks),
    h("div", { class: "brush-row" }, h("kbd", {}, "["), stats.brush, h("kbd", {}, "]")),
    h("h3", {}, "Classes"),
    palette,
    h("h3", {}, "View"),
    toggle("fit", "Fit", "F"),
    toggle("mask-opacity", "Mask opacity", "O"),
    toggle("uncertainty", "Uncertainty", "U"),
    toggle("boundaries", "Dim & outlines", "X"),
    toggle("undo", "Undo", "Ctrl+Z"),
    toggle("redo", "Redo", "Ctrl+⇧+Z"),
    h("div", { class: "spacer" }),
    account,
  );
  return { topbar, toolbar, stats, toolButtons, paletteButtons };
}

/** "Accept prediction" (R): disabled, saying why, when the round had no model to predict. */
function predictionButton(available: boolean, callbacks: ChromeCallbacks): HTMLButtonElement {
  const node = h(
    "button",
    {
      type: "button",
      class: "toggle prediction",
      "data-action": "accept-prediction",
      title: available
        ? "Fill every unlabeled queried superpixel with the model's predicted class (R)"
        : "No prediction for this image: its round had no model yet",
    },
    h("span", {}, "Accept prediction"),
    h("kbd", {}, "R"),
  );
  node.disabled = !available;
  node.addEventListener("click", () => callbacks.action("accept-prediction"));
  return node;
}

/** The uncertainty map's legend: its colour ramp from low to high (shown with the map). */
export function heatLegend(): HTMLElement {
  return h(
    "div",
    { class: "heat-legend", "data-legend": "uncertainty", hidden: true },
    h("span", { class: "heat-legend-title" }, "Model uncertainty"),
    h("span", {}, "low"),
    h("span", { class: "heat-ramp", style: `background:${heatGradientCss()}` }),
    h("span", {}, "high"),
  );
}

/** The "?" overlay: every shortcut and mouse gesture, from the one table in shortcuts.ts. */
export function helpOverlay(onClose: () => void): HTMLElement {
  const rows = SHORTCUTS.map((shortcut) =>
    h(
      "tr",
      {},
      h("td", {}, ...shortcut.keys.flatMap((key, k) => [k > 0 ? " or " : "", h("kbd", {}, key)])),
      h("td", {}, shortcut.label),
    ),
  );
  const gestures = GESTURES.map((gesture) =>
    h("tr", {}, h("td", {}, h("kbd", {}, gesture.gesture)), h("td", {}, gesture.label)),
  );
  const close = h("button", { type: "button", class: "ghost" }, "Close (Esc)");
  close.addEventListener("click", onClose);
  return h(
    "div",
    { class: "help", role: "dialog", "aria-label": "Keyboard shortcuts" },
    h(
      "div",
      { class: "help-card" },
      h("h2", {}, "Shortcuts"),
      h(
        "p",
        { class: "muted" },
        "Only the outlined superpixels are asked about; everything dimmed is locked and never changes.",
      ),
      h("table", {}, h("tbody", {}, ...rows, ...gestures)),
      close,
    ),
  );
}
