/**
 * Every keyboard shortcut of the workspace, in one table: the key handler matches against it
 * and the "?" overlay lists it, so the two cannot drift apart.
 */

export type Action =
  | "class"
  | "tool-fill"
  | "fill-remaining"
  | "accept-prediction"
  | "tool-brush"
  | "tool-eraser"
  | "brush-smaller"
  | "brush-larger"
  | "undo"
  | "redo"
  | "fit"
  | "next-unlabeled"
  | "fill-target"
  | "zoom-in"
  | "zoom-out"
  | "mask-opacity"
  | "uncertainty"
  | "boundaries"
  | "submit"
  | "skip"
  | "previous"
  | "help"
  | "close";

export interface Shortcut {
  action: Action;
  /** Combos such as "Ctrl+Shift+Z"; "1-9" stands for the digit keys. */
  keys: string[];
  label: string;
}

export const SHORTCUTS: readonly Shortcut[] = [
  { action: "class", keys: ["1-9"], label: "Pick label class 1–9" },
  { action: "tool-fill", keys: ["G"], label: "Fill tool: click fills a queried superpixel, drag fills every one passed" },
  {
    action: "fill-remaining",
    keys: ["Shift+G"],
    label: "Fill every queried superpixel still unlabeled with the current class",
  },
  {
    action: "accept-prediction",
    keys: ["R"],
    label: "Accept the model's prediction: every queried superpixel still unlabeled takes its predicted class (then correct what is wrong)",
  },
  { action: "tool-brush", keys: ["B"], label: "Brush (clipped to queried superpixels)" },
  { action: "tool-eraser", keys: ["E"], label: "Eraser (back to unlabeled)" },
  { action: "brush-smaller", keys: ["["], label: "Smaller brush" },
  { action: "brush-larger", keys: ["]"], label: "Larger brush" },
  { action: "undo", keys: ["Ctrl+Z"], label: "Undo" },
  { action: "redo", keys: ["Ctrl+Shift+Z", "Ctrl+Y"], label: "Redo" },
  { action: "fit", keys: ["F"], label: "Fit the image to the window" },
  { action: "next-unlabeled", keys: ["N"], label: "Zoom to the next queried superpixel left unlabeled (highlighted)" },
  {
    action: "fill-target",
    keys: ["A"],
    label: "Fill the highlighted superpixel with the current class, then go to the next (keyboard painting)",
  },
  { action: "zoom-in", keys: ["+"], label: "Zoom in (or mouse wheel, to the cursor)" },
  { action: "zoom-out", keys: ["-"], label: "Zoom out" },
  { action: "mask-opacity", keys: ["O"], label: "Mask opacity: strong / faint / hidden" },
  { action: "uncertainty", keys: ["U"], label: "Uncertainty heat map on/off" },
  { action: "boundaries", keys: ["X"], label: "Dimming and outlines on/off" },
  { action: "submit", keys: ["Enter"], label: "Submit and open the next image" },
  { action: "skip", keys: ["S"], label: "Skip this image (your draft stays on this device)" },
  { action: "previous", keys: ["P"], label: "Reopen the image you just submitted (while its round is open)" },
  { action: "help", keys: ["?"], label: "Show or hide this help" },
  { action: "close", keys: ["Escape"], label: "Close a dialog" },
];

/** Mouse gestures, listed in the help overlay next to the keys. */
export const GESTURES: readonly { gesture: string; label: string }[] = [
  { gesture: "Click", label: "Fill / paint with the current tool" },
  { gesture: "Drag (fill tool)", label: "Fill every queried superpixel the pointer passes over" },
  { gesture: "Drag", label: "Brush or erase a stroke" },
  { gesture: "Wheel", label: "Zoom to the cursor" },
  { gesture: "Space + drag", label: "Pan (or drag with the middle button)" },
];

export interface KeyInput {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
}

function matchesCombo(event: KeyInput, combo: string): boolean {
  const parts = combo.split("+");
  // "+" itself is a key: "Ctrl++" would split badly, so only the bare "+" is supported.
  const key = combo === "+" ? "+" : (parts.pop() as string);
  const ctrl = parts.includes("Ctrl");
  const shift = parts.includes("Shift");
  if ((event.ctrlKey || event.metaKey) !== ctrl || event.altKey) return false;
  if (key.length === 1 && /[a-z]/i.test(key)) {
    return event.shiftKey === shift && event.key.toLowerCase() === key.toLowerCase();
  }
  if (key === "Enter" || key === "Escape") return !event.shiftKey && event.key === key;
  // Punctuation ("?", "[", "+") depends on the layout's shift state; compare the character.
  return event.key === key || (key === "+" && event.key === "=");
}

/** The action a key press stands for, with the class slot (0-8) for digit keys. */
export function actionFor(event: KeyInput): { action: Action; slot?: number } | null {
  if (!event.ctrlKey && !event.metaKey && !event.altKey && /^[1-9]$/.test(event.key)) {
    return { action: "class", slot: Number(event.key) - 1 };
  }
  for (const shortcut of SHORTCUTS) {
    if (shortcut.action === "class") continue;
    if (shortcut.keys.some((combo) => matchesCombo(event, combo))) return { action: shortcut.action };
  }
  return null;
}
