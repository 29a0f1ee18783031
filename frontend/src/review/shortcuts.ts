/**
 * Review mode's keyboard: accept, send back, next and previous image under the browser's
 * filters (pure: the page maps keys to actions and finds the neighbours through a page fetcher).
 */

export type ReviewAction = "accept" | "send-back" | "next" | "previous" | "leave-field";

export interface ReviewShortcut {
  action: ReviewAction;
  keys: readonly string[];
  label: string;
}

export const REVIEW_SHORTCUTS: readonly ReviewShortcut[] = [
  { action: "accept", keys: ["A"], label: "Accept" },
  { action: "send-back", keys: ["S"], label: "Send back (with the comment)" },
  { action: "next", keys: ["N", "→"], label: "Next image" },
  { action: "previous", keys: ["P", "←"], label: "Previous image" },
  { action: "leave-field", keys: ["Esc"], label: "Leave the comment field (keys work again)" },
];

export interface KeyPress {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
  /** Focus is in a text field (input, textarea, select, editable): its keys are its own. */
  inTextField: boolean;
}

// The key names shown in REVIEW_SHORTCUTS that differ from KeyboardEvent.key.
const EVENT_KEYS: Readonly<Record<string, string>> = {
  "→": "ArrowRight",
  "←": "ArrowLeft",
  Esc: "Escape",
};

function pressed(press: KeyPress, shortcut: ReviewShortcut): boolean {
  return shortcut.keys.some((shown) => {
    const key = EVENT_KEYS[shown] ?? shown;
    return key.length === 1 ? press.key.toLowerCase() === key.toLowerCase() : press.key === key;
  });
}

/**
 * The action a key press asks for (read from REVIEW_SHORTCUTS, the list the page shows), or
 * null. Enter and Space are never shortcuts: on a focused button they press that button only.
 * In a text field only Esc counts (it leaves the field); outside one, Esc does nothing.
 */
export function reviewAction(press: KeyPress): ReviewAction | null {
  if (press.ctrlKey || press.metaKey || press.altKey) return null;
  const inField = (shortcut: ReviewShortcut): boolean => shortcut.action === "leave-field";
  const found = REVIEW_SHORTCUTS.find(
    (shortcut) => inField(shortcut) === press.inTextField && pressed(press, shortcut),
  );
  return found?.action ?? null;
}

export interface IdPage {
  total: number;
  items: readonly { image_id: number }[];
}

/** The largest page the browse endpoint serves. */
export const SCAN_PAGE = 200;

/**
 * The images just before and after `imageId` in the browser's order (ascending id) under its
 * filters, whether or not the image itself still matches them. Reads pages from the start
 * until one passes the image: the browser's lists are a few hundred images at most per filter.
 */
export async function neighbours(
  fetchPage: (offset: number, limit: number) => Promise<IdPage>,
  imageId: number,
): Promise<{ previous: number | null; next: number | null }> {
  let previous: number | null = null;
  for (let offset = 0; ; offset += SCAN_PAGE) {
    const page = await fetchPage(offset, SCAN_PAGE);
    for (const { image_id: id } of page.items) {
      if (id > imageId) return { previous, next: id };
      if (id < imageId) previous = id;
    }
    if (page.items.length < SCAN_PAGE || offset + SCAN_PAGE >= page.total) return { previous, next: null };
  }
}
