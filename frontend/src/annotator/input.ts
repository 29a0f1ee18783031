/**
 * Turns the stage's pointer, wheel and keyboard events into workspace gestures: press, drag
 * and release for the tools; pan (space + drag, or the middle button); zoom (wheel, to the
 * cursor); hover (for the brush outline); and actions from the shortcut table.
 * Coordinates passed on are stage pixels (CSS px from the stage's top-left corner).
 */
import { type Action, actionFor } from "./shortcuts";

export interface Point {
  x: number;
  y: number;
}

export interface GestureTarget {
  /** Any input at all (keeps the time-on-task clock running). */
  activity(): void;
  /** A dialog has the keyboard: it gets the key first; true if it used it. */
  dialogKey(event: KeyboardEvent): boolean | null;
  /** True while pointer input must be ignored (a dialog or overlay is open). */
  blocked(): boolean;
  /** Button pressed on the stage; return true to receive the drag that follows. */
  press(point: Point): boolean;
  /** Pointer samples since the last call, oldest first (coalesced events included). */
  drag(points: Point[]): void;
  release(): void;
  pan(dx: number, dy: number): void;
  zoom(point: Point, factor: number): void;
  /** The pointer over the stage (null when it left); `panning` while space is held. */
  hover(point: Point | null, panning: boolean): void;
  action(action: Action, slot: number | undefined, repeat: boolean): void;
  /** The page was hidden or is going away (flush what must not be lost). */
  hidden(): void;
  visible(visible: boolean): void;
}

function isTyping(target: EventTarget | null): boolean {
  return (
    target instanceof HTMLInputElement ||
    target instanceof HTMLTextAreaElement ||
    target instanceof HTMLSelectElement ||
    (target instanceof HTMLElement && target.isContentEditable)
  );
}

/** A focused control that Enter and Space must activate (not submit the image or pan). */
function isControl(target: EventTarget | null): boolean {
  return target instanceof HTMLButtonElement || target instanceof HTMLAnchorElement;
}

function activates(event: KeyboardEvent): boolean {
  return event.key === "Enter" || event.code === "Space" || event.key === " ";
}

/** Binds `stage`'s (and the window's) input to `target`; returns the unbinding function. */
export function bindStageInput(stage: HTMLElement, target: GestureTarget): () => void {
  const cleanups: (() => void)[] = [];
  const on = <E extends Event>(
    element: EventTarget,
    type: string,
    handler: (event: E) => void,
    options?: AddEventListenerOptions,
  ): void => {
    const listener = handler as EventListener;
    element.addEventListener(type, listener, options);
    cleanups.push(() => element.removeEventListener(type, listener, options));
  };

  let spaceHeld = false;
  let pan: { pointerId: number; last: Point } | null = null;
  let dragging: number | null = null;

  const stagePoint = (event: MouseEvent, rect = stage.getBoundingClientRect()): Point => ({
    x: event.clientX - rect.left,
    y: event.clientY - rect.top,
  });
  const setPanning = (held: boolean): void => {
    spaceHeld = held;
    stage.classList.toggle("panning", held || pan !== null);
  };

  on<PointerEvent>(stage, "pointerdown", (event) => {
    target.activity();
    if (target.blocked()) return;
    const point = stagePoint(event);
    if (event.button === 1 || (event.button === 0 && spaceHeld)) {
      event.preventDefault();
      pan = { pointerId: event.pointerId, last: point };
      stage.setPointerCapture(event.pointerId);
      stage.classList.add("panning");
      return;
    }
    if (event.button !== 0) return;
    if (target.press(point)) {
      dragging = event.pointerId;
      stage.setPointerCapture(event.pointerId);
    }
  });

  on<PointerEvent>(stage, "pointermove", (event) => {
    const rect = stage.getBoundingClientRect();
    const point = stagePoint(event, rect);
    if (pan && event.pointerId === pan.pointerId) {
      target.pan(point.x - pan.last.x, point.y - pan.last.y);
      pan.last = point;
    } else if (dragging === event.pointerId) {
      // Every sample since the last event, so fast strokes stay continuous.
      const samples = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
      target.drag((samples.length > 0 ? samples : [event]).map((sample) => stagePoint(sample, rect)));
    }
    target.hover(point, spaceHeld || pan !== null);
  });

  const up = (event: PointerEvent): void => {
    target.activity();
    if (pan && event.pointerId === pan.pointerId) {
      pan = null;
      setPanning(spaceHeld);
    } else if (dragging === event.pointerId) {
      dragging = null;
      target.release();
    }
  };
  on<PointerEvent>(stage, "pointerup", up);
  on<PointerEvent>(stage, "pointercancel", up);
  on<PointerEvent>(stage, "pointerleave", () => target.hover(null, spaceHeld));
  on<WheelEvent>(
    stage,
    "wheel",
    (event) => {
      event.preventDefault();
      target.activity();
      const delta = event.deltaMode === 1 ? event.deltaY * 16 : event.deltaY;
      target.zoom(stagePoint(event), Math.exp(-delta * 0.0015));
    },
    { passive: false },
  );
  on<MouseEvent>(stage, "contextmenu", (event) => event.preventDefault());

  on<KeyboardEvent>(
    window,
    "keydown",
    (event) => {
      if (isTyping(event.target)) return;
      target.activity();
      // A dialog's own focused button takes Enter/Space before the dialog's default choice.
      if (isControl(event.target) && activates(event) && (event.target as Element).closest('[role="dialog"]')) {
        return;
      }
      const used = target.dialogKey(event);
      if (used !== null) {
        if (used) event.preventDefault();
        return;
      }
      // Enter and Space belong to a focused button or link: they press it, as anywhere else.
      if (isControl(event.target) && activates(event)) return;
      if (event.code === "Space") {
        event.preventDefault();
        if (!spaceHeld) setPanning(true);
        return;
      }
      const found = actionFor(event);
      if (!found) return;
      // Handled here, so Enter on a focused button does not also press it.
      event.preventDefault();
      target.action(found.action, found.slot, event.repeat);
    },
    { capture: true },
  );
  on<KeyboardEvent>(window, "keyup", (event) => {
    if (event.code === "Space" && !isTyping(event.target) && !isControl(event.target)) {
      event.preventDefault();
      setPanning(false);
    }
  });
  on<FocusEvent>(window, "blur", () => setPanning(false));
  on<Event>(document, "visibilitychange", () => {
    target.visible(document.visibilityState === "visible");
    if (document.visibilityState === "hidden") target.hidden();
  });
  on<PageTransitionEvent>(window, "pagehide", () => target.hidden());

  return () => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  };
}
