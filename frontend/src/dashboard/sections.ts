/** The dashboard's read-only panels, each rebuilt from one API part on every refresh. */
import { h } from "../shell/dom";
import type { Budget, BudgetLine, ClassBalance, LearningCurve, RoundRow, TeamMember, WarningLevel } from "./api";
import { formatCount, formatHours, formatMiou, formatPercent, formatUnit } from "./format";
import { binCounts, median } from "./histogram";

const LEVEL_TEXT: Record<WarningLevel, string> = {
  none: "No budget set",
  ok: "Within budget",
  warning: "Budget nearly spent",
  critical: "Budget almost gone",
  exhausted: "Budget spent",
};

function lineLevel(line: BudgetLine, budget: Budget): WarningLevel {
  const spent = line.fraction_spent;
  if (spent === null) return "none";
  if (spent >= 1) return "exhausted";
  if (spent >= budget.critical_at) return "critical";
  if (spent >= budget.warn_at) return "warning";
  return "ok";
}

export function budgetPanel(budget: Budget): HTMLElement {
  const cards = budget.lines.map((line) => {
    const level = lineLevel(line, budget);
    const fraction = Math.min(line.fraction_spent ?? 0, 1);
    return h(
      "div",
      {
        class: `budget-card level-${level}`,
        "data-unit": line.unit,
        "data-spent": line.spent,
        "data-set": line.set ?? "",
        "data-remaining": line.remaining ?? "",
      },
      h("h3", {}, line.unit),
      h("div", { class: "budget-spent" }, formatUnit(line.unit, line.spent)),
      h(
        "div",
        { class: "muted" },
        line.set === null
          ? "no budget set"
          : `of ${line.equivalent ? "≈ " : ""}${formatUnit(line.unit, line.set)} · ${formatUnit(line.unit, line.remaining)} left`,
      ),
      h("div", { class: "meter" }, h("span", { style: `width:${(fraction * 100).toFixed(1)}%` })),
      h("div", { class: "muted small" }, line.set === null ? "" : `${formatPercent(line.fraction_spent)} spent`),
    );
  });
  const banner =
    budget.level === "warning" || budget.level === "critical" || budget.level === "exhausted"
      ? h(
          "p",
          { class: `budget-banner level-${budget.level}`, role: "alert", "data-testid": "budget-warning" },
          `${LEVEL_TEXT[budget.level]}: ${formatPercent(
            Math.max(...budget.lines.filter((l) => !l.equivalent).map((l) => l.fraction_spent ?? 0)),
          )} of the budget is spent.`,
        )
      : null;
  return h(
    "section",
    { class: "panel", "data-panel": "budget", "data-level": budget.level },
    h("h2", {}, "Budget ", h("span", { class: `pill level-${budget.level}` }, LEVEL_TEXT[budget.level])),
    banner,
    h("div", { class: "budget-cards" }, ...cards),
    h("p", { class: "muted small" }, budget.note),
  );
}

export function curveDetails(curve: LearningCurve): HTMLElement {
  const projection = curve.projection;
  return h(
    "div",
    { class: "curve-details" },
    projection
      ? h(
          "p",
          { "data-testid": "projection", "data-miou": projection.miou, "data-at-pixels": projection.at_pixels },
          h("strong", {}, `Projected mIoU ${formatMiou(projection.miou)} at ${formatCount(projection.at_pixels)} pixels. `),
          h(
            "span",
            { class: "muted" },
            `How: ${projection.method} (a = ${projection.a.toFixed(4)}, b = ${projection.b.toFixed(4)}, ${projection.points_used} points). A trend, not a promise: it assumes the curve keeps bending as it has.`,
          ),
        )
      : h(
          "p",
          { class: "muted", "data-testid": "projection" },
          "No projection yet: it needs validation mIoU from two rounds trained on different amounts of labels.",
        ),
    h(
      "table",
      { class: "grid compact", "data-testid": "curve-points" },
      h("thead", {}, h("tr", {}, h("th", {}, "Round"), h("th", {}, "Labeled pixels"), h("th", {}, "of pool"), h("th", {}, "mIoU"))),
      h(
        "tbody",
        {},
        ...curve.points.map((point) =>
          h(
            "tr",
            { "data-round": point.round_number, "data-pixels": point.labeled_pixels, "data-miou": point.miou },
            h("td", {}, String(point.round_number)),
            h("td", {}, formatCount(point.labeled_pixels)),
            h("td", {}, formatPercent(point.labeled_fraction, 2)),
            h("td", {}, formatMiou(point.miou)),
          ),
        ),
      ),
    ),
    curve.simulated.length
      ? h(
          "p",
          { class: "muted small" },
          "Simulated curves: mean over seeds of an oracle run (`tessera simulate`), their labeled-pixel fraction scaled to this project's pool of ",
          formatCount(curve.pool_pixels),
          " pixels.",
        )
      : null,
  );
}

export function histogram(counts: readonly number[]): HTMLElement {
  const bins = binCounts(counts, 8);
  const tallest = Math.max(1, ...bins.map((bin) => bin.images));
  return h(
    "span",
    { class: "histogram", title: `superpixels per image: ${counts.join(", ")}` },
    ...bins.map((bin) =>
      h("span", {
        class: "bar",
        style: `height:${Math.max(2, Math.round((bin.images / tallest) * 24))}px`,
        title: `${bin.low === bin.high ? bin.low : `${bin.low}–${bin.high}`} superpixels: ${bin.images} image${bin.images === 1 ? "" : "s"}`,
      }),
    ),
  );
}

/** "efficientnet_lite0 zoom 2, 120/300 it. (stopped early)" (the zoom only when not 1), or
 * "–" before the round has a model. */
export function modelCell(round: RoundRow): string {
  if (round.model_kind === null) return "–";
  const zoom = round.model_encoder_zoom ?? 1;
  const kind = zoom === 1 ? round.model_kind : `${round.model_kind} zoom ${zoom}`;
  if (round.iterations === null) return kind;
  const cap = round.max_iterations === null ? "" : `/${round.max_iterations}`;
  return `${kind}, ${round.iterations}${cap} it.${round.stopped_early ? " (stopped early)" : ""}`;
}

export function roundsTable(rounds: RoundRow[]): HTMLElement {
  const rows = [...rounds].reverse().map((round) => {
    const mid = median(round.superpixels_per_image);
    return h(
      "tr",
      { "data-round": round.number },
      h("td", {}, String(round.number)),
      h("td", {}, round.strategy),
      h("td", {}, h("span", { class: `pill status-${round.status}` }, round.status)),
      h("td", { class: "num" }, String(round.images_queried)),
      h("td", { class: "num" }, formatCount(round.superpixels_queried)),
      h(
        "td",
        { class: "hist-cell" },
        round.superpixels_per_image.length ? histogram(round.superpixels_per_image) : "–",
        mid === null
          ? null
          : h(
              "span",
              { class: "muted small" },
              ` ${Math.min(...round.superpixels_per_image)}–${Math.max(...round.superpixels_per_image)}, median ${mid}`,
            ),
      ),
      h("td", { class: "num" }, `${round.queries_done}/${round.images_queried}`),
      h("td", { class: "num" }, formatCount(round.labeled_pixels)),
      h("td", { class: "num" }, formatCount(round.labeled_superpixels)),
      h("td", { class: "num" }, formatHours(round.seconds / 3600)),
      h(
        "td",
        { class: "num", title: round.per_class_iou ? `per class IoU: ${round.per_class_iou.map((v) => formatMiou(v)).join(" · ")}` : "" },
        formatMiou(round.miou),
      ),
      h("td", { class: "small", "data-cell": "model" }, modelCell(round)),
    );
  });
  return h(
    "section",
    { class: "panel", "data-panel": "rounds" },
    h("h2", {}, "Rounds"),
    rounds.length === 0
      ? h("p", { class: "muted" }, "No rounds yet: start the first one above.")
      : h(
          "table",
          { class: "grid" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ...["Round", "Strategy", "Status", "Images", "Superpixels", "Superpixels per image", "Done", "Pixels labeled", "Superpixels labeled", "Time", "Model mIoU", "Model"].map(
                (title) => h("th", {}, title),
              ),
            ),
          ),
          h("tbody", {}, ...rows),
        ),
    h("p", { class: "muted small" }, "Model mIoU: the model trained at the start of the round, on the labels of the rounds before it (hover for per-class IoU). The histogram is the dynamic rule's signature: its count varies per image. Model: its network and the training iterations it ran of the most allowed (fewer: early stopping on the validation split ended it)."),
  );
}

export function classBalancePanel(balance: ClassBalance): HTMLElement {
  const scale = Math.max(0.01, ...balance.classes.flatMap((c) => [c.labeled_share, c.validation_share]));
  const bar = (share: number, kind: string): HTMLElement =>
    h("span", { class: `share ${kind}`, style: `width:${((share / scale) * 100).toFixed(1)}%` });
  return h(
    "section",
    { class: "panel", "data-panel": "class-balance" },
    h("h2", {}, "Class balance"),
    h(
      "table",
      { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, "Class"), h("th", {}, "Labeled vs validation share"), h("th", {}, "Labeled"), h("th", {}, "Validation"), h("th", {}, ""))),
      h(
        "tbody",
        {},
        ...balance.classes.map((c) =>
          h(
            "tr",
            { "data-class": c.name, class: c.starved ? "starved" : "" },
            h("td", {}, h("span", { class: "chip", style: `background:${c.colour}` }), ` ${c.name}`),
            h("td", { class: "shares" }, bar(c.labeled_share, "labeled"), bar(c.validation_share, "validation")),
            h("td", { class: "num" }, formatPercent(c.labeled_share)),
            h("td", { class: "num" }, formatPercent(c.validation_share)),
            h("td", {}, c.starved ? h("span", { class: "pill level-critical" }, "starved") : ""),
          ),
        ),
      ),
    ),
    h(
      "p",
      { class: "muted small" },
      `${formatCount(balance.labeled_pixels)} labeled pixels; validation ground truth: ${formatCount(balance.validation_pixels)} pixels in ${balance.validation_images} images. Top bar: labeled share, bottom: validation share; ${balance.rule}.`,
    ),
  );
}

export function teamTable(team: TeamMember[]): HTMLElement {
  return h(
    "section",
    { class: "panel", "data-panel": "team" },
    h("h2", {}, "Team"),
    h(
      "table",
      { class: "grid" },
      h(
        "thead",
        {},
        h("tr", {}, ...["Who", "Role", "Saves", "Superpixels", "Pixels", "Hours", "Superpixels / h", "Pixels / h", "Conflicts"].map((t) => h("th", {}, t))),
      ),
      h(
        "tbody",
        {},
        ...team.map((member) =>
          h(
            "tr",
            { "data-user": member.email },
            h("td", {}, member.name ? `${member.name} ` : "", h("span", { class: "muted" }, member.email)),
            h("td", {}, member.role ?? "–"),
            h("td", { class: "num" }, String(member.submissions)),
            h("td", { class: "num" }, formatCount(member.superpixels)),
            h("td", { class: "num" }, formatCount(member.pixels)),
            h("td", { class: "num" }, formatHours(member.hours)),
            h("td", { class: "num" }, member.superpixels_per_hour === null ? "–" : formatCount(member.superpixels_per_hour)),
            h("td", { class: "num" }, member.pixels_per_hour === null ? "–" : formatCount(member.pixels_per_hour)),
            h("td", { class: "num" }, `${member.conflicts} (${formatPercent(member.conflict_share, 0)})`),
          ),
        ),
      ),
    ),
    h("p", { class: "muted small" }, "Superpixels and pixels their accepted saves changed; hours as recorded by the workspace (idle gaps capped); conflicts: saves refused because someone else saved the image first (412), as a share of all their saves."),
  );
}
