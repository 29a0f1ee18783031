/**
 * The saving from the model's pre-fill (backend/dashboard/prefill.py): median active time and
 * clicks per labeled image, for images started from the prediction and for the others.
 */
import type { Dashboard } from "./api";
import { formatDuration, formatPercent } from "./format";
import { h } from "../shell/dom";

type PrefillEffort = Dashboard["prefill"];
type Effort = PrefillEffort["with_prefill"];

function row(label: string, effort: Effort, group: string): HTMLElement {
  return h(
    "tr",
    { "data-group": group },
    h("td", {}, label),
    h("td", { class: "num" }, String(effort.images)),
    h("td", { class: "num" }, effort.median_seconds === null ? "–" : formatDuration(effort.median_seconds)),
    h("td", { class: "num" }, effort.median_clicks === null ? "–" : String(Math.round(effort.median_clicks))),
  );
}

/** 0.4 -> "40 % less time"; -0.1 -> "10 % more time". */
function change(share: number, less: string, more: string): string {
  return share >= 0 ? `${formatPercent(share, 0)} ${less}` : `${formatPercent(-share, 0)} ${more}`;
}

export function prefillPanel(effort: PrefillEffort): HTMLElement {
  const seconds = effort.seconds_saved_share;
  const clicks = effort.clicks_saved_share;
  const saving =
    seconds === null || clicks === null
      ? "The saving shows once images were labeled both with and without the pre-fill."
      : `With the pre-fill an image took ${change(seconds, "less time", "more time")} and ` +
        `${change(clicks, "fewer clicks", "more clicks")} (medians).`;
  return h(
    "section",
    { class: "panel", "data-panel": "prefill" },
    h("h2", {}, "Pre-fill from the model"),
    h(
      "table",
      { class: "grid" },
      h("thead", {}, h("tr", {}, ...["Images", "Labeled", "Median time", "Median clicks"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        row("Started from the prediction (R)", effort.with_prefill, "with"),
        row("Labeled by hand", effort.without_prefill, "without"),
      ),
    ),
    h("p", { class: "muted small", "data-testid": "prefill-saving" }, saving),
  );
}
