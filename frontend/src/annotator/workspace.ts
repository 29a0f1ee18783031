/**
 * The annotator workspace for one task: layers, tools, keyboard, history, draft and saving.
 *
 * It owns no navigation: when the annotator submits, skips or must reload, it calls the page
 * back (pages/label.ts), which fetches the next task and builds a new workspace.
 */
import { ApiError, api } from "../api/client";
import type { LabelClass, ProjectDetail, SaveResult, Task } from "../api/types";
import { h, formatSeconds } from "../shell/dom";
import { type OpenModal, showModal } from "../shell/modal";
import { type Chrome, type Tool, buildChrome, heatLegend, helpOverlay } from "./chrome";
import { classLut, heatLut } from "./colours";
import { type Changes, DraftStore, decodeRuns, encodeRunsAt, runsFromBase64, runsToBase64 } from "./draft";
import { History } from "./history";
import { type Diff, MaskEditor, UNLABELED } from "./mask";
import { encodeEdit } from "./edit";
import { decodeGreyPng } from "./png";
import { OUTLINE_DONE, OUTLINE_LOCKED, OUTLINE_TODO } from "./outlines";
import { reviewNote } from "../review/note";
import { type Layers, LayerStack, OutlineOverlay, ViewportLayers } from "./render";
import { type GestureTarget, type Point, bindStageInput } from "./input";
import type { Action } from "./shortcuts";
import { QueriedRegions, type SuperpixelMap } from "./superpixels";
import { ActiveTimer } from "./timer";
import { type View, fitView, focusView, panBy, screenToImage, zoomAt } from "./view";
import type { Rect } from "./geometry";
import { isLargeImage } from "./viewport";

export type { Tool } from "./chrome";

/** Everything a task needs, fetched by the page before the workspace is built. */
export interface TaskBundle {
  project: ProjectDetail;
  task: Task;
  /** The photo; for a large image (viewport.ts) a downscaled copy, see `fullImage`. */
  image: ImageBitmap;
  /**
   * A large image's full resolution (downloaded then if its preview came from the server),
   * decoded once the workspace is on screen.
   */
  fullImage?: () => Promise<ImageBitmap>;
  superpixels: SuperpixelMap;
  /** `superpixels` indexed for the task's queried ids, if the page did it already. */
  regions?: QueriedRegions;
  /** The server's mask (one class index per pixel, 255 = unlabeled) and its version. */
  mask: Uint8Array;
  version: number;
}

export interface WorkspaceHost {
  /** A submit started (the page may fetch the next task meanwhile). */
  submitting?(): void;
  /** The submit was refused or failed; the annotator stays on this task. */
  submitFailed?(): void;
  /** The mask was saved with done=true: show the next task. */
  submitted(result: SaveResult): void;
  /** The annotator skipped this task (the lease is released by the page). */
  skip(): void;
  /** Reopen the task submitted just before this one; absent when there is none. */
  previous?(): void;
  /** Reload this task from the server; re-apply `carry` (the annotator's edits) if given. */
  reload(carry: Carry | null): void;
  /** The image is no longer open for labeling: move on. */
  next(): void;
  /** Shown at the foot of the toolbar (who is signed in, logout). */
  account?: HTMLElement;
}

/** Unsaved work carried across a reload after a conflict. */
export interface Carry {
  changes: Changes;
  clicks: number;
  seconds: number;
  prefilled?: boolean;
}

/**
 * The model's class for each queried superpixel (by slot, the regions' order), -1 where it
 * has none or names no class of the project; null when the task carries no prediction.
 */
function predictedBySlot(task: Task, regions: QueriedRegions, classes: readonly LabelClass[]): Int32Array | null {
  const predicted = task.predicted_classes;
  if (!predicted || predicted.length !== task.superpixel_ids.length) return null;
  const known = new Set(classes.map((c) => c.index));
  const bySlot = new Int32Array(regions.slotCount).fill(-1);
  task.superpixel_ids.forEach((id, k) => {
    const slot = regions.slotOf[id] ?? -1;
    const value = predicted[k] as number;
    if (slot >= 0 && known.has(value)) bySlot[slot] = value;
  });
  return bySlot;
}

const OPACITIES = [0.6, 0.3, 0];
/** History tag of the pre-fill edit (R): the save is recorded as pre-filled while it is done. */
const PREFILL = "prefill";
const MIN_BRUSH = 1;
const MAX_BRUSH = 256;
const DRAFT_DELAY_MS = 400;
/** The outlines are redrawn crisp once the view has not moved for this long. */
const OUTLINE_SETTLE_MS = 80;

/** Browsers draw custom cursors up to 128 px; the outline and its halo need a few more. */
const MAX_CURSOR_PX = 120;

/** A CSS cursor: a circle `size` px across (dashed for the eraser), hot spot in the middle. */
function brushCursor(size: number, dashed: boolean): string {
  const side = Math.ceil(size) + 6;
  const c = side / 2;
  const r = Math.max(size / 2, 1.5);
  const dash = dashed ? ' stroke-dasharray="3 2"' : "";
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${side}" height="${side}">` +
    `<circle cx="${c}" cy="${c}" r="${r}" fill="none" stroke="black" stroke-width="3" opacity="0.6"/>` +
    `<circle cx="${c}" cy="${c}" r="${r}" fill="none" stroke="white" stroke-width="1.5"${dash}/>` +
    `<circle cx="${c}" cy="${c}" r="0.8" fill="white"/></svg>`;
  return `url("data:image/svg+xml,${encodeURIComponent(svg)}") ${Math.round(c)} ${Math.round(c)}, crosshair`;
}

function sortedClasses(project: ProjectDetail): LabelClass[] {
  return [...project.classes].sort((a, b) => a.index - b.index);
}

export class Workspace {
  readonly element: HTMLElement;
  private readonly bundle: TaskBundle;
  private readonly host: WorkspaceHost;
  private readonly classes: LabelClass[];
  private readonly lut: Uint32Array;
  private readonly base: Uint8Array;
  private readonly editor: MaskEditor;
  private readonly history = new History();
  private readonly layers: Layers;
  private readonly outlines: OutlineOverlay;
  /** Per superpixel id + 1 (0: outside the image): its outline style (outlines.ts). */
  private readonly outlineStyle: Uint8Array;
  private outlinesDirty = true;
  private outlineTimer: number | undefined;
  private stageWidth = 0;
  private stageHeight = 0;
  /** The model's class per queried superpixel (slot), or null: see predictedBySlot. */
  private readonly predicted: Int32Array | null;
  /** The save counts as pre-filled while the pre-fill (R) is in effect: undoing it clears this. */
  private get prefilled(): boolean {
    return this.history.isDone(PREFILL);
  }
  private readonly timer: ActiveTimer;
  private readonly drafts = new DraftStore(window.localStorage);
  private readonly draftKey: string;

  private readonly stage: HTMLDivElement;
  private readonly cursor: HTMLDivElement;
  private readonly chrome: Chrome;
  private readonly toast: HTMLDivElement;
  private readonly legend = heatLegend();

  private tool: Tool = "fill";
  private classSlot = 0;
  private brushSize: number;
  private opacityStep = 0;
  private uncertaintyVisible = false;
  private boundariesVisible = true;
  private view: View = { scale: 1, x: 0, y: 0 };
  private clicks = 0;
  private saving = false;
  private modal: OpenModal | null = null;
  /** Set once the edits were saved or dropped: no draft may be written after that. */
  private settled = false;
  private helpOpen = false;
  private destroyed = false;

  /** The drag in progress: a brush or eraser stroke, or a drag-fill (`fill`). */
  private stroke: { x: number; y: number; value: number; fill: boolean; filled: number } | null = null;
  private pointer: Point | null = null;
  private panning = false;
  private frameRequested = false;
  private viewChanged = false;
  private draftTimer: number | undefined;
  private toastTimer: number | undefined;
  private clockTimer: number | undefined;
  private readonly resizeObserver: ResizeObserver;
  private readonly cleanups: (() => void)[] = [];
  /** True while the view is the fitted one: a resize of the window fits it again. */
  private fitted = true;
  private lastFocused = -1;
  /** Per queried superpixel: 1 while its outline shows it finished. */
  private doneShown: Uint8Array;
  /** The superpixel (slot) N zoomed to, outlined on screen; A fills it. -1: none. */
  private target = -1;
  private readonly targetBox: HTMLDivElement = h("div", { class: "target-box", hidden: true });
  private cursorKey = "";

  constructor(bundle: TaskBundle, host: WorkspaceHost, carry: Carry | null = null) {
    this.bundle = bundle;
    this.host = host;
    const { task, project } = bundle;
    this.classes = sortedClasses(project);
    this.lut = classLut(this.classes);
    this.base = bundle.mask.slice();
    const regions = bundle.regions ?? QueriedRegions.build(bundle.superpixels, task.superpixel_ids);
    this.editor = new MaskEditor(regions, bundle.mask);
    // Large images are drawn at screen resolution: no canvas as large as the image.
    this.layers = isLargeImage(task.width, task.height)
      ? new ViewportLayers(task.width, task.height)
      : new LayerStack(task.width, task.height);
    this.predicted = predictedBySlot(task, regions, this.classes);
    // Locked everywhere until restyleOutlines marks the queried superpixels.
    this.outlineStyle = new Uint8Array(bundle.superpixels.count + 1).fill(OUTLINE_LOCKED);
    this.outlineStyle[0] = 0;
    this.outlines = new OutlineOverlay({
      labels: bundle.superpixels.labels,
      width: task.width,
      height: task.height,
      styleOf: this.outlineStyle,
    });
    this.draftKey = DraftStore.key(project.id, task.image_id);
    // A brush about a quarter of a superpixel wide refines an edge in a stroke or two.
    this.brushSize = Math.max(2, Math.round(project.superpixel_size / 4));

    this.stage = h("div", {
      class: "stage",
      "data-tool": this.tool,
      tabindex: "0",
      role: "application",
      "aria-label": "Image to label: keyboard shortcuts work here (? lists them)",
    });
    this.cursor = h("div", { class: "brush-cursor", hidden: true });
    this.stage.append(this.layers.element, this.outlines.element, this.cursor, this.targetBox, this.legend);
    this.toast = h("div", { class: "toast", role: "status", "aria-live": "polite" });
    this.chrome = buildChrome(
      project,
      task,
      this.classes,
      { action: (action, slot) => this.run(action, slot), tool: (tool) => this.selectTool(tool) },
      host.account ?? null,
      host.previous !== undefined,
      this.predicted !== null,
    );
    // A task sent back in review shows the lead's comment above the tools.
    if (task.review_note) this.chrome.toolbar.prepend(reviewNote(task.review_note));
    // The page's main landmark (the workspace is the whole page while labeling).
    this.element = h(
      "main",
      { class: "workspace", "data-query-id": task.query_id, "data-image-id": task.image_id },
      this.chrome.topbar,
      this.chrome.toolbar,
      this.stage,
      this.toast,
    );

    // A control clicked with the mouse hands the keyboard back to the image, so the next
    // Enter submits rather than pressing that control again; keyboard users keep their place.
    const refocus = (event: MouseEvent): void => {
      if (event.detail > 0 && (event.target as Element).closest(".topbar button, .toolbar button")) {
        this.stage.focus({ preventScroll: true });
      }
    };
    this.element.addEventListener("click", refocus);

    let restored: string | null = null;
    let seconds = 0;
    if (carry) {
      this.reapply(carry.changes, carry.prefilled ?? false);
      this.clicks = carry.clicks;
      seconds = carry.seconds;
      restored = "Reloaded the newer mask and re-applied your edits on top. Check them, then submit.";
    } else {
      const draft = this.drafts.load(this.draftKey);
      if (draft) {
        try {
          const changes = decodeRuns(runsFromBase64(draft.runs), bundle.mask.length);
          const applied = this.reapply(changes, draft.prefilled ?? false);
          this.clicks = draft.clicks;
          seconds = draft.seconds;
          if (applied > 0) {
            restored =
              draft.baseVersion === bundle.version
                ? `Restored ${applied} unsaved pixel edits from this device.`
                : `Restored your unsaved edits on top of version ${bundle.version} (someone saved in between).`;
          }
        } catch {
          this.drafts.remove(this.draftKey);
        }
      }
    }
    this.timer = new ActiveTimer(seconds);
    this.element.dataset.prefilled = String(this.prefilled);

    this.layers.drawImage(bundle.image);
    this.layers.drawContext(regions, { outlines: false });
    // 2 never matches a state: every queried superpixel gets its style on the first pass.
    this.doneShown = new Uint8Array(regions.slotCount).fill(2);
    this.restyleOutlines();
    this.editor.markAllDirty();
    this.layers.setMaskOpacity(OPACITIES[this.opacityStep] as number);

    this.resizeObserver = new ResizeObserver((entries) => {
      const size = entries[entries.length - 1]?.contentRect;
      if (size) this.setStageSize(size.width, size.height);
      if (this.fitted) this.fit();
      else this.requestFrame();
    });
    this.cleanups.push(bindStageInput(this.stage, this.gestures()));
    this.selectClass(0);
    this.selectTool("fill");
    if (restored) this.showToast(restored, 6000);
    this.clockTimer = window.setInterval(() => this.updateClock(), 1000);
  }

  /** Attaches the workspace to the page and draws the first frame. */
  mount(parent: HTMLElement): void {
    parent.append(this.element);
    this.resizeObserver.observe(this.stage);
    const rect = this.stage.getBoundingClientRect();
    this.setStageSize(rect.width, rect.height);
    this.fit();
    this.renderFrame();
    this.updateStatus();
    const mark = `tessera:paintable:${this.bundle.task.query_id}`;
    performance.mark(mark);
    document.body.dataset.paintable = String(this.bundle.task.query_id);
    this.stage.focus({ preventScroll: true });
    this.loadFullImage();
  }

  /** A large image's full resolution replaces its preview where zoomed in, once decoded. */
  private loadFullImage(): void {
    const { fullImage, image, task } = this.bundle;
    if (!fullImage) return;
    fullImage()
      .then((full) => {
        if (this.destroyed) return full.close();
        this.layers.drawImage(full, image);
        this.requestFrame();
        performance.mark(`tessera:full-image:${task.query_id}`);
      })
      .catch(() => this.showToast("Could not load the image at full resolution; showing a preview.", 6000));
  }

  destroy(): void {
    this.destroyed = true;
    this.flushDraft();
    window.clearInterval(this.clockTimer);
    window.clearTimeout(this.draftTimer);
    window.clearTimeout(this.toastTimer);
    window.clearTimeout(this.outlineTimer);
    this.resizeObserver.disconnect();
    for (const cleanup of this.cleanups) cleanup();
    this.modal?.close();
    this.element.remove();
    delete document.body.dataset.paintable;
  }

  // --- input ------------------------------------------------------------------------------

  private gestures(): GestureTarget {
    return {
      activity: () => this.timer.touch(),
      dialogKey: (event) => (this.modal ? this.modal.handleKey(event) : null),
      blocked: () => this.modal !== null || this.helpOpen,
      press: (point) => this.press(point),
      drag: (points) => {
        if (!this.stroke) return;
        for (const point of points) {
          const { x, y } = screenToImage(this.view, point.x, point.y);
          if (this.stroke.fill) {
            this.stroke.filled += this.editor.fillAlong(this.stroke.x, this.stroke.y, x, y, this.stroke.value);
          } else {
            this.editor.paintSegment(this.stroke.x, this.stroke.y, x, y, this.brushSize, this.stroke.value);
          }
          this.stroke.x = x;
          this.stroke.y = y;
        }
        this.requestFrame();
      },
      release: () => {
        if (!this.stroke) return;
        const { fill, filled, x, y } = this.stroke;
        this.stroke = null;
        const diff = this.editor.endStroke();
        if (diff) this.commit(diff);
        else if (fill && filled === 0) this.flashLocked(x, y);
        this.updateStatus();
      },
      pan: (dx, dy) => {
        this.view = panBy(this.view, dx, dy);
        this.fitted = false;
        this.viewChanged = true;
        this.requestFrame();
      },
      zoom: (point, factor) => this.zoom(point.x, point.y, factor),
      hover: (point, panning) => {
        this.pointer = point;
        this.panning = panning;
        this.requestFrame();
      },
      action: (action, slot, repeat) => {
        if (this.helpOpen && action !== "help" && action !== "close") this.toggleHelp(false);
        if (repeat && (action === "submit" || action === "skip")) return;
        this.run(action, slot);
      },
      hidden: () => this.flushDraft(),
      visible: (visible) => this.timer.setVisible(visible),
    };
  }

  /**
   * A button press on the stage: the start of a drag-fill (a click fills one superpixel,
   * a drag every queried one it passes over) or of a brush or eraser stroke. Either way one
   * click and, on release, one undo step.
   */
  private press(point: Point): boolean {
    if (this.saving) return false;
    const { x, y } = screenToImage(this.view, point.x, point.y);
    this.clicks += 1;
    const value = this.tool === "eraser" ? UNLABELED : this.classes[this.classSlot]?.index;
    if (value === undefined) {
      this.updateStatus();
      return false;
    }
    const fill = this.tool === "fill";
    this.stroke = { x, y, value, fill, filled: 0 };
    this.editor.beginStroke();
    if (fill) this.stroke.filled = this.editor.fillAlong(x, y, x, y, value);
    else this.editor.paintSegment(x, y, x, y, this.brushSize, value);
    this.updateStatus();
    this.requestFrame();
    return true;
  }

  /** Performs an action from a key, a button or the help overlay. */
  run(action: Action, slot?: number): void {
    switch (action) {
      case "class":
        if (slot !== undefined && slot < this.classes.length) this.selectClass(slot);
        return;
      case "tool-fill":
        return this.selectTool("fill");
      case "tool-brush":
        return this.selectTool("brush");
      case "tool-eraser":
        return this.selectTool("eraser");
      case "brush-smaller":
        return this.setBrushSize(this.brushSize <= 4 ? this.brushSize - 1 : Math.round(this.brushSize / 1.25));
      case "brush-larger":
        return this.setBrushSize(this.brushSize < 4 ? this.brushSize + 1 : Math.round(this.brushSize * 1.25));
      case "undo":
        if (this.stroke) return;
        if (this.history.undo((indices, values) => this.editor.applyValues(indices, values))) this.afterEdit();
        return;
      case "redo":
        if (this.stroke) return;
        if (this.history.redo((indices, values) => this.editor.applyValues(indices, values))) this.afterEdit();
        return;
      case "fill-remaining":
        return this.fillRemaining();
      case "accept-prediction":
        return this.acceptPrediction();
      case "fit":
        return this.fit();
      case "next-unlabeled":
        return this.focusNextUnlabeled();
      case "fill-target":
        return this.fillTarget();
      case "zoom-in":
      case "zoom-out": {
        const rect = this.stage.getBoundingClientRect();
        return this.zoom(rect.width / 2, rect.height / 2, action === "zoom-in" ? 1.25 : 0.8);
      }
      case "mask-opacity":
        this.opacityStep = (this.opacityStep + 1) % OPACITIES.length;
        this.layers.setMaskOpacity(OPACITIES[this.opacityStep] as number);
        this.showToast(`Mask opacity ${Math.round((OPACITIES[this.opacityStep] as number) * 100)}%`);
        return;
      case "uncertainty":
        void this.toggleUncertainty();
        return;
      case "boundaries":
        this.boundariesVisible = !this.boundariesVisible;
        this.layers.setBoundariesVisible(this.boundariesVisible);
        this.outlines.setVisible(this.boundariesVisible);
        this.requestFrame();
        return;
      case "submit":
        return this.submit();
      case "skip":
        return this.skip();
      case "previous":
        if (this.saving || !this.host.previous) return;
        this.flushDraft();
        return this.host.previous();
      case "help":
        return this.toggleHelp(!this.helpOpen);
      case "close":
        if (this.helpOpen) this.toggleHelp(false);
        return;
    }
  }

  // --- state changes --------------------------------------------------------------------------

  private selectTool(tool: Tool): void {
    this.tool = tool;
    this.stage.dataset.tool = tool;
    for (const [name, button] of this.chrome.toolButtons) {
      button.classList.toggle("active", name === tool);
      button.setAttribute("aria-pressed", String(name === tool));
    }
    this.requestFrame();
  }

  private selectClass(slot: number): void {
    if (slot >= this.classes.length) return;
    this.classSlot = slot;
    this.chrome.paletteButtons.forEach((button, k) => {
      button.classList.toggle("active", k === slot);
      button.setAttribute("aria-checked", String(k === slot));
    });
    if (this.tool === "eraser") this.selectTool("brush");
  }

  private setBrushSize(size: number): void {
    this.brushSize = Math.min(MAX_BRUSH, Math.max(MIN_BRUSH, size));
    this.updateStatus();
    this.requestFrame();
  }

  private commit(diff: Diff, tag?: string): void {
    this.history.push(diff, tag);
    this.afterEdit();
  }

  private afterEdit(): void {
    this.element.dataset.prefilled = String(this.prefilled);
    this.restyleOutlines();
    this.requestFrame();
    this.updateStatus();
    this.scheduleDraft();
  }

  /**
   * Applies carried or drafted changes as one undoable edit (undoing it also takes back the
   * pre-fill they include); returns the pixels changed.
   */
  private reapply(changes: Changes, prefilled: boolean): number {
    const diff = this.editor.replay(changes.indices, changes.values);
    if (!diff) return 0;
    this.history.push(diff, prefilled ? PREFILL : undefined);
    return diff.indices.length;
  }

  /** Fill-all (Shift+G): every queried pixel still unlabeled gets the current class; one click. */
  private fillRemaining(): void {
    const labelClass = this.classes[this.classSlot];
    if (this.stroke || this.saving || !labelClass) return;
    this.clicks += 1;
    const diff = this.editor.fillRemaining(labelClass.index);
    if (diff) {
      this.commit(diff);
      this.showToast(`Every remaining queried pixel is now ${labelClass.name} (Ctrl+Z undoes it).`);
    } else {
      this.updateStatus();
      this.showToast("Nothing left to fill: every queried superpixel is labeled.");
    }
  }

  /**
   * Pre-fill (R): every queried superpixel still unlabeled takes the class the model predicts
   * for it, as one undoable edit and one click; the annotator then corrects what is wrong.
   */
  private acceptPrediction(): void {
    if (this.stroke || this.saving) return;
    const predicted = this.predicted;
    if (!predicted) {
      this.showToast("The model made no prediction for this image (its round had no model yet).");
      return;
    }
    this.clicks += 1;
    const diff = this.editor.fillRemainingBySlot((slot) => predicted[slot] ?? -1);
    if (diff) {
      this.commit(diff, PREFILL);
      this.showToast("Filled with the model's prediction: fix what is wrong (Ctrl+Z undoes it).", 5000);
    } else {
      this.updateStatus();
      this.showToast("Nothing left to pre-fill: every queried superpixel is labeled.");
    }
  }

  /** Outlines follow each superpixel's state: finished ones turn quiet (see outlines.ts). */
  private restyleOutlines(): void {
    const shown = this.doneShown;
    const { ids } = this.editor.regions;
    for (let slot = 0; slot < shown.length; slot++) {
      const done = this.editor.isLabeled(slot) ? 1 : 0;
      if (shown[slot] === done) continue;
      shown[slot] = done;
      this.outlineStyle[(ids[slot] as number) + 1] = done ? OUTLINE_DONE : OUTLINE_TODO;
      this.outlinesDirty = true;
    }
  }

  private setStageSize(width: number, height: number): void {
    if (width === this.stageWidth && height === this.stageHeight) return;
    this.stageWidth = width;
    this.stageHeight = height;
    this.layers.resize(width, height);
    this.outlinesDirty = true;
  }

  private fit(): void {
    const rect = this.stage.getBoundingClientRect();
    if (rect.width < 2 || rect.height < 2) return;
    this.view = fitView(this.bundle.task.width, this.bundle.task.height, rect.width, rect.height);
    this.fitted = true;
    this.viewChanged = true;
    this.requestFrame();
  }

  /** Keyboard painting (A): fills the highlighted superpixel, then moves on to the next. */
  private fillTarget(): void {
    const labelClass = this.classes[this.classSlot];
    if (this.stroke || this.saving || !labelClass) return;
    if (this.target < 0) return this.focusNextUnlabeled();
    this.clicks += 1;
    const diff = this.editor.fillSuperpixel(this.target, labelClass.index);
    if (diff) this.commit(diff);
    this.focusNextUnlabeled();
  }

  /** Centres and outlines the next queried superpixel that still has unlabeled pixels (N). */
  private focusNextUnlabeled(): void {
    const slot = this.editor.nextUnlabeled(this.lastFocused);
    if (slot < 0) {
      this.target = -1;
      this.requestFrame();
      this.showToast("Every queried superpixel is labeled. Enter submits.");
      return;
    }
    this.lastFocused = slot;
    this.target = slot;
    const rect = this.stage.getBoundingClientRect();
    const { width, height } = this.bundle.task;
    const fitted = fitView(width, height, rect.width, rect.height);
    const bounds = this.editor.regions.bounds[slot] as Rect;
    this.view = focusView(bounds, rect.width, rect.height, fitted.scale);
    this.fitted = false;
    this.viewChanged = true;
    this.requestFrame();
    const left = this.editor.queriedSuperpixels - this.editor.labeledSuperpixels;
    this.showToast(`${left} queried superpixel${left === 1 ? "" : "s"} left to label (N for the next)`);
  }

  private zoom(x: number, y: number, factor: number): void {
    this.view = zoomAt(this.view, x, y, factor);
    this.fitted = false;
    this.viewChanged = true;
    this.requestFrame();
  }

  private flashLocked(x: number, y: number): void {
    if (x < 0 || y < 0 || x >= this.bundle.task.width || y >= this.bundle.task.height) return;
    this.showToast("That superpixel is not queried in this round; it stays as it is.");
  }

  private async toggleUncertainty(): Promise<void> {
    this.uncertaintyVisible = !this.uncertaintyVisible;
    if (this.uncertaintyVisible && !this.layers.hasUncertainty) {
      const link = this.bundle.task.links.uncertainty;
      try {
        const png = link ? await api.uncertainty(link) : null;
        if (!png) {
          this.uncertaintyVisible = false;
          this.showToast("The model stored no uncertainty map for this image.");
          return;
        }
        const grey = await decodeGreyPng(png);
        this.layers.drawUncertainty(grey.pixels, grey.width, grey.height, heatLut());
      } catch (error) {
        this.uncertaintyVisible = false;
        this.showToast(`Could not show the uncertainty map: ${String(error)}`);
        return;
      }
    }
    this.layers.setUncertaintyVisible(this.uncertaintyVisible);
    this.legend.hidden = !this.uncertaintyVisible;
    this.element.querySelector('[data-action="uncertainty"]')?.classList.toggle("active", this.uncertaintyVisible);
  }

  private toggleHelp(open: boolean): void {
    this.helpOpen = open;
    this.element.querySelector(".help")?.remove();
    if (open) this.element.append(helpOverlay(() => this.toggleHelp(false)));
  }

  // --- rendering --------------------------------------------------------------------------

  private requestFrame(): void {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      this.renderFrame();
    });
  }

  private renderFrame(): void {
    if (this.viewChanged) {
      this.layers.setView(this.view);
      this.viewChanged = false;
      // Panning and zooming carry the drawn outlines along; they are redrawn once it stops.
      this.outlines.follow(this.view);
      window.clearTimeout(this.outlineTimer);
      this.outlineTimer = window.setTimeout(() => {
        this.outlinesDirty = true;
        this.requestFrame();
      }, OUTLINE_SETTLE_MS);
    }
    if (this.outlinesDirty && this.boundariesVisible) {
      this.outlinesDirty = false;
      window.clearTimeout(this.outlineTimer);
      this.outlines.draw(this.view, this.stageWidth, this.stageHeight);
    }
    this.layers.paintMask(this.editor.mask, this.lut, this.editor.takeDirty());
    this.updateCursor();
    this.updateTargetBox();
  }

  /**
   * The brush outline. Up to 120 screen px it is the system cursor (an SVG circle): the
   * browser moves it without repainting the page, which keeps a stroke's main-thread cost to
   * the painting itself. Larger brushes get a DOM circle that follows the pointer.
   */
  private updateCursor(): void {
    const painting = this.tool !== "fill" && !this.panning;
    const size = this.brushSize * this.view.scale;
    const system = painting && size <= MAX_CURSOR_PX;
    const key = system ? `${Math.round(size)}:${this.tool}` : "";
    if (key !== this.cursorKey) {
      this.cursorKey = key;
      this.stage.style.cursor = system ? brushCursor(size, this.tool === "eraser") : "";
    }
    if (!this.pointer || !painting || system) {
      this.cursor.hidden = true;
      return;
    }
    const image = screenToImage(this.view, this.pointer.x, this.pointer.y);
    // The brush snaps to pixel centres; draw it where it will paint.
    const cx = (Math.floor(image.x) + 0.5) * this.view.scale + this.view.x;
    const cy = (Math.floor(image.y) + 0.5) * this.view.scale + this.view.y;
    this.cursor.hidden = false;
    this.cursor.style.width = `${size}px`;
    this.cursor.style.height = `${size}px`;
    this.cursor.style.transform = `translate(${cx - size / 2}px, ${cy - size / 2}px)`;
  }

  /** The N target's outline: a screen-space box (a constant 2 px at any zoom). */
  private updateTargetBox(): void {
    const bounds = this.target >= 0 ? this.editor.regions.bounds[this.target] : undefined;
    this.targetBox.hidden = !bounds;
    if (!bounds) return;
    const { scale, x, y } = this.view;
    const pad = 3;
    this.targetBox.dataset.slot = String(this.target);
    this.targetBox.dataset.superpixel = String(this.editor.regions.ids[this.target]);
    this.targetBox.style.transform = `translate(${bounds.x0 * scale + x - pad}px, ${bounds.y0 * scale + y - pad}px)`;
    this.targetBox.style.width = `${(bounds.x1 - bounds.x0) * scale + 2 * pad}px`;
    this.targetBox.style.height = `${(bounds.y1 - bounds.y0) * scale + 2 * pad}px`;
  }

  private updateStatus(): void {
    const done = this.editor.labeledSuperpixels;
    const total = this.editor.queriedSuperpixels;
    const { stats } = this.chrome;
    const progress = stats.progress;
    progress.textContent = `${done} of ${total} queried superpixels labeled`;
    progress.dataset.labeled = String(done);
    progress.dataset.queried = String(total);
    progress.classList.toggle("complete", done === total);
    stats.clicks.textContent = `${this.clicks} clicks`;
    stats.brush.textContent = `${this.brushSize} px`;
    this.updateClock();
  }

  private updateClock(): void {
    this.chrome.stats.time.textContent = formatSeconds(this.timer.seconds);
  }

  private showToast(message: string, ms = 3500, kind = "info"): void {
    this.toast.textContent = message;
    this.toast.dataset.kind = kind;
    this.toast.classList.add("visible");
    window.clearTimeout(this.toastTimer);
    this.toastTimer = window.setTimeout(() => this.toast.classList.remove("visible"), ms);
  }

  // --- drafts ---------------------------------------------------------------------------------

  private scheduleDraft(): void {
    this.chrome.stats.draft.textContent = "Unsaved edits…";
    window.clearTimeout(this.draftTimer);
    this.draftTimer = window.setTimeout(() => this.flushDraft(), DRAFT_DELAY_MS);
  }

  /** Writes the local draft now (synchronous, so it also works while the page unloads). */
  private flushDraft(): void {
    window.clearTimeout(this.draftTimer);
    this.draftTimer = undefined;
    if (this.settled) return;
    const runs = this.changedRuns();
    const status = this.chrome.stats.draft;
    if (runs.length === 0 && this.clicks === 0) {
      this.drafts.remove(this.draftKey);
      status.textContent = "";
      return;
    }
    const saved = this.drafts.save(this.draftKey, {
      format: 1,
      queryId: this.bundle.task.query_id,
      baseVersion: this.bundle.version,
      clicks: this.clicks,
      seconds: this.timer.seconds,
      prefilled: this.prefilled,
      savedAt: new Date().toISOString(),
      runs: runsToBase64(runs),
    });
    status.textContent = saved ? "Draft kept on this device" : "Draft NOT kept (browser storage full)";
    status.classList.toggle("warning", !saved);
  }

  private settle(): void {
    this.settled = true;
    window.clearTimeout(this.draftTimer);
    this.drafts.remove(this.draftKey);
  }

  private unsavedChanges(): Changes {
    return decodeRuns(this.changedRuns(), this.editor.mask.length);
  }

  /** The pixels changed since the loaded version, as runs; only queried pixels can differ. */
  private changedRuns(): Uint32Array {
    return encodeRunsAt(this.editor.mask, this.base, this.editor.regions.pixels);
  }

  // --- saving -------------------------------------------------------------------------------

  private submit(): void {
    if (this.saving || this.stroke) return;
    const missing = this.editor.queriedSuperpixels - this.editor.labeledSuperpixels;
    if (missing > 0) {
      this.modal = showModal(
        this.element,
        "Submit with unlabeled superpixels?",
        [
          `${missing} of ${this.editor.queriedSuperpixels} queried superpixels still have unlabeled pixels. ` +
            "The model learns nothing from them this round.",
          "Press N (after Esc) to zoom to the next one.",
        ],
        [
          { label: "Submit anyway (Enter)", value: "submit", primary: true },
          { label: "Keep labeling (Esc)", value: "cancel", cancel: true },
        ],
        (choice) => {
          this.modal = null;
          if (choice === "submit") void this.save();
        },
        "confirm-submit",
      );
      return;
    }
    void this.save();
  }

  private async save(): Promise<void> {
    if (this.saving) return;
    this.saving = true;
    this.element.classList.add("saving");
    this.flushDraft();
    this.showToast("Saving…", 30000);
    const { task } = this.bundle;
    // Marks for bench/browser_annotator.py: encoding, the request, and submit-to-next-task.
    const id = task.query_id;
    performance.mark(`tessera:submit:${id}`);
    this.host.submitting?.();
    try {
      // Only what changed since the loaded version: fills of whole superpixels, brushed runs.
      const edit = encodeEdit(this.editor.mask, this.base, this.editor.regions);
      const bytes = JSON.stringify(edit).length;
      performance.mark(`tessera:encoded:${id}`, {
        detail: { bytes, fills: edit.fills.length, runs: edit.runs.length },
      });
      const result = await api.editMask(task.links.mask, edit, {
        version: this.bundle.version,
        superpixelMapId: task.superpixel_map_id,
        clicks: this.clicks,
        seconds: this.timer.seconds,
        prefilled: this.prefilled,
        done: true,
      });
      performance.mark(`tessera:saved:${id}`);
      performance.measure(`tessera:encode:${id}`, `tessera:submit:${id}`, `tessera:encoded:${id}`);
      performance.measure(`tessera:save-request:${id}`, `tessera:encoded:${id}`, `tessera:saved:${id}`);
      this.settle();
      this.showToast("Saved.", 1500);
      this.host.submitted(result);
    } catch (error) {
      this.saving = false;
      this.element.classList.remove("saving");
      this.host.submitFailed?.();
      this.onSaveError(error);
    }
  }

  private onSaveError(error: unknown): void {
    this.toast.classList.remove("visible");
    if (!(error instanceof ApiError)) {
      this.showToast(`Not saved: ${String(error)}. Your draft is safe on this device.`, 8000, "error");
      return;
    }
    if (error.status === 412) {
      const current = /(\d+)/.exec(error.response?.headers.get("ETag") ?? "")?.[1] ?? "newer";
      this.modal = showModal(
        this.element,
        "Someone else changed this image",
        [
          `Another save reached the server while you worked (it is now at version ${current}; ` +
            `you started from version ${this.bundle.version}). Nothing of yours was stored.`,
          "Reload their mask; your edits can be re-applied on top of it.",
        ],
        [
          { label: "Reload and re-apply my edits (Enter)", value: "reapply", primary: true },
          { label: "Reload and drop my edits", value: "drop" },
        ],
        (choice) => {
          this.modal = null;
          const carry: Carry | null =
            choice === "reapply"
              ? {
                  changes: this.unsavedChanges(),
                  clicks: this.clicks,
                  seconds: this.timer.seconds,
                  prefilled: this.prefilled,
                }
              : null;
          // The carry (if any) goes to the reloaded workspace, which drafts it again.
          this.settle();
          this.host.reload(carry);
        },
        "conflict",
      );
      return;
    }
    if (error.status === 409) {
      this.modal = showModal(
        this.element,
        "This image is no longer open for labeling",
        [error.detail, "The round may have closed. Your edits stay on this device as a draft."],
        [{ label: "Next image (Enter)", value: "next", primary: true, cancel: true }],
        () => {
          this.modal = null;
          this.host.next();
        },
        "closed",
      );
      return;
    }
    if (error.status === 401) return; // The shell sends the annotator to log in; the draft stays.
    this.showToast(`Not saved (${error.status}): ${error.detail}`, 10000, "error");
  }

  private skip(): void {
    if (this.saving) return;
    this.flushDraft();
    this.host.skip();
  }

  /** performance.now() of the annotator's last input here. */
  get lastInput(): number {
    return this.timer.lastInput;
  }

  /** Shows a short message over the workspace. */
  notify(message: string): void {
    this.showToast(message, 5000);
  }
}
