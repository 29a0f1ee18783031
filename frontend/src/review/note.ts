/** The lead's comment on a task that came back from review, as the workspace shows it. */
import "./review.css";
import type { Task } from "../api/types";
import { h } from "../shell/dom";

export function reviewNote(note: NonNullable<Task["review_note"]>): HTMLElement {
  return h(
    "section",
    { class: "review-note", "data-testid": "review-note", role: "note", "aria-label": "sent back by your lead" },
    h("strong", {}, `Sent back by ${note.reviewer}:`),
    h("p", {}, note.comment),
  );
}
