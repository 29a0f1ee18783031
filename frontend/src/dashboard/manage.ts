/**
 * Project management for leads (/projects/:projectId/manage): settings, members and
 * invitations, classes, image upload (drag and drop, with progress), simulation results, export.
 */
import { ApiError, api } from "../api/client";
import type { ProjectDetail, Role } from "../api/types";
import { h } from "../shell/dom";
import { frame } from "../shell/layout";
import type { Page } from "../shell/router";
import { currentUser } from "../shell/session";
import { dashboardApi, uploadImages } from "./api";
import { formatPercent } from "./format";
import { invitationsPanel } from "./invitations";
import { leadProject, projectNav } from "./page";

const message = (error: unknown): string => (error instanceof ApiError ? error.detail : error instanceof Error ? error.message : String(error));

function feedback(): HTMLElement {
  return h("p", { class: "feedback small", role: "status" });
}

function say(element: HTMLElement, text: string, ok = true): void {
  element.textContent = text;
  element.className = `feedback small ${ok ? "ok" : "error"}`;
}

// `numeric`: a select whose options are numbers, sent as numbers; `hint`: a line under the input.
type Field = {
  name: string;
  label: string;
  kind: "number" | "select" | "text" | "ids" | "boolean";
  options?: string[];
  numeric?: boolean;
  step?: string;
  optional?: boolean;
  hint?: string;
};

export const SETTINGS: Field[] = [
  { name: "strategy", label: "Strategy", kind: "select", options: ["dynamic", "static", "random_superpixels", "random_images", "full"] },
  { name: "static_fraction", label: "Static fraction", kind: "number", step: "0.005" },
  { name: "uncertainty", label: "Uncertainty", kind: "select", options: ["entropy", "bald", "margin", "paper"] },
  { name: "mc_samples", label: "MC-dropout passes (T)", kind: "number" },
  { name: "superpixel_size", label: "Superpixel size (px)", kind: "number" },
  { name: "superpixel_algorithm", label: "Superpixel algorithm", kind: "select", options: ["slic", "felzenszwalb"] },
  { name: "initial_images", label: "Initial images", kind: "number" },
  { name: "images_per_round", label: "Images per round", kind: "number" },
  { name: "budget_pixels", label: "Budget (pixels)", kind: "number", optional: true },
  { name: "budget_hours", label: "Budget (hours)", kind: "number", step: "0.1", optional: true },
  { name: "model_architecture", label: "Model", kind: "select", options: ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "unet"] },
  {
    name: "encoder_zoom",
    label: "Encoder zoom",
    kind: "select",
    options: ["1", "2"],
    numeric: true,
    hint: "2: the encoder sees images upsampled 2x (better on small images, 4x its time per image); 1 for unet.",
  },
  { name: "encoder_weights_path", label: "Encoder weights file (absolute path)", kind: "text", optional: true },
  { name: "max_iterations", label: "Most iterations, first model", kind: "number", optional: true },
  { name: "finetune_max_iterations", label: "Most iterations, later rounds", kind: "number", optional: true },
  { name: "early_stopping_patience", label: "Early-stopping patience", kind: "number", optional: true },
  { name: "validate_every", label: "Validate every (iterations)", kind: "number" },
  { name: "image_score", label: "Image score", kind: "select", options: ["mean", "foreground_weighted"] },
  { name: "background_classes", label: "Background classes (indices)", kind: "ids" },
  { name: "class_balance", label: "Class-balance-aware selection", kind: "boolean" },
];

/** The form's text for a setting's value, and the value to send for the text. */
function shown(field: Field, value: unknown): string {
  if (value === null || value === undefined) return "";
  if (field.kind === "ids" && Array.isArray(value)) return value.join(", ");
  return String(value);
}

export function parsed(field: Field, raw: string): unknown {
  if (field.kind === "select") return field.numeric ? Number(raw) : raw;
  if (field.kind === "boolean") return raw === "true";
  if (field.kind === "ids") return raw.split(/[\s,]+/).filter((part) => part !== "").map(Number);
  if (raw === "") return field.optional ? null : undefined;
  return field.kind === "text" ? raw : Number(raw);
}

function settingsForm(project: ProjectDetail): HTMLElement {
  const out = feedback();
  const inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
  const current = project as unknown as Record<string, unknown>;
  const fields = SETTINGS.map((field) => {
    const value = current[field.name];
    let input: HTMLInputElement | HTMLSelectElement;
    if (field.kind === "select" || field.kind === "boolean") {
      const options = field.kind === "boolean" ? ["false", "true"] : (field.options ?? []);
      input = h("select", { name: field.name }, ...options.map((o) => h("option", { value: o, selected: o === String(value) }, o)));
    } else {
      input = h("input", {
        type: field.kind === "number" ? "number" : "text",
        name: field.name,
        ...(field.kind === "number" ? { step: field.step ?? "1", min: "0" } : {}),
        value: shown(field, value),
        placeholder: field.optional ? (field.kind === "text" ? "the shipped weights" : "none") : "",
      });
    }
    inputs.set(field.name, input);
    const hint = field.hint === undefined ? null : h("span", { class: "muted small" }, field.hint);
    return h("label", {}, field.label, input, hint);
  });
  const save = h("button", { type: "submit", class: "primary" }, "Save settings");
  const form = h("form", { class: "settings-form", "data-form": "settings" }, ...fields, h("div", { class: "actions" }, save), out);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const changes: Record<string, unknown> = {};
    for (const field of SETTINGS) {
      const raw = (inputs.get(field.name) as HTMLInputElement | HTMLSelectElement).value.trim();
      changes[field.name] = parsed(field, raw);
    }
    dashboardApi
      .updateProject(project.id, changes)
      .then(() => say(out, "Saved. The next round uses these settings."))
      .catch((error: unknown) => say(out, message(error), false));
  });
  return h("section", { class: "panel" }, h("h2", {}, "Settings"), form);
}

function membersPanel(project: ProjectDetail): HTMLElement {
  const list = h("ul", { class: "rows" });
  const out = feedback();
  const load = (): void => {
    void dashboardApi.members(project.id).then((members) => {
      list.replaceChildren(
        ...members.map((member) => {
          const role = h(
            "select",
            { "aria-label": `role of ${member.email}` },
            ...(["annotator", "lead"] as const).map((r) => h("option", { value: r, selected: r === member.role }, r)),
          );
          role.addEventListener("change", () => {
            dashboardApi
              .setRole(project.id, member.user_id, role.value as Role)
              .then(() => say(out, `${member.email} is now ${role.value}.`))
              .catch((error: unknown) => say(out, message(error), false));
          });
          const remove = h("button", { type: "button", class: "ghost" }, "Remove");
          remove.addEventListener("click", () => {
            dashboardApi
              .removeMember(project.id, member.user_id)
              .then(load)
              .catch((error: unknown) => say(out, message(error), false));
          });
          const who = member.name ? [member.name, " ", h("span", { class: "muted" }, member.email)] : [member.email];
          return h("li", { "data-member": member.email }, h("span", {}, ...who), role, remove);
        }),
      );
    });
  };
  const email = h("input", {
    type: "email",
    placeholder: "email of an existing user",
    required: true,
    "aria-label": "email of the new member",
  });
  const role = h("select", { "aria-label": "role of the new member" }, h("option", { value: "annotator" }, "annotator"), h("option", { value: "lead" }, "lead"));
  const add = h("form", { class: "inline-form" }, email, role, h("button", { type: "submit" }, "Add member"));
  add.addEventListener("submit", (event) => {
    event.preventDefault();
    dashboardApi
      .addMember(project.id, email.value.trim(), role.value as Role)
      .then(() => {
        email.value = "";
        say(out, "Added.");
        load();
      })
      .catch((error: unknown) => say(out, message(error), false));
  });
  load();
  return h("section", { class: "panel" }, h("h2", {}, "Members"), list, add, out);
}

function classesPanel(project: ProjectDetail): HTMLElement {
  const out = feedback();
  const list = h("ul", { class: "rows" });
  const load = (): void => {
    void api.project(project.id).then((fresh) => {
      list.replaceChildren(
        ...fresh.classes.map((c) => {
          const name = h("input", { value: c.name, "aria-label": `name of class ${c.index}` });
          const colour = h("input", { type: "color", value: c.colour, "aria-label": `colour of class ${c.index}` });
          const save = h("button", { type: "button" }, "Save");
          save.addEventListener("click", () => {
            dashboardApi
              .updateClass(project.id, c.id, { name: name.value.trim(), colour: colour.value })
              .then(() => say(out, `Class ${c.index} saved.`))
              .catch((error: unknown) => say(out, message(error), false));
          });
          const remove = h("button", { type: "button", class: "ghost" }, "Delete");
          remove.addEventListener("click", () => {
            dashboardApi
              .deleteClass(project.id, c.id)
              .then(load)
              .catch((error: unknown) => say(out, message(error), false));
          });
          return h("li", {}, h("span", { class: "muted" }, `#${c.index}`), name, colour, save, remove);
        }),
      );
    });
  };
  const name = h("input", { placeholder: "new class", required: true, "aria-label": "name of the new class" });
  const colour = h("input", { type: "color", value: "#00aa66", "aria-label": "colour of the new class" });
  const add = h("form", { class: "inline-form" }, name, colour, h("button", { type: "submit" }, "Add class"));
  add.addEventListener("submit", (event) => {
    event.preventDefault();
    dashboardApi
      .addClass(project.id, name.value.trim(), colour.value)
      .then(() => {
        name.value = "";
        load();
      })
      .catch((error: unknown) => say(out, message(error), false));
  });
  load();
  return h("section", { class: "panel" }, h("h2", {}, "Classes"), list, add, out);
}

function uploadPanel(project: ProjectDetail): HTMLElement {
  const out = feedback();
  const bar = h("span", { style: "width:0%" });
  const meter = h("div", { class: "meter", hidden: true }, bar);
  const split = h("select", { "aria-label": "split" }, ...["pool", "validation", "test"].map((s) => h("option", { value: s }, s)));
  const picker = h("input", { type: "file", multiple: true, accept: "image/*,.zip" });
  const zone = h(
    "div",
    { class: "drop-zone", "data-testid": "drop-zone", tabindex: 0 },
    "Drop images or zip archives here, or ",
    h("label", { class: "link" }, "choose files", picker),
  );
  const send = (files: File[]): void => {
    if (files.length === 0) return;
    meter.hidden = false;
    say(out, `Uploading ${files.length} file${files.length === 1 ? "" : "s"}…`);
    uploadImages(project.id, files, split.value, (fraction) => {
      bar.style.width = `${(fraction * 100).toFixed(1)}%`;
      out.textContent = `Uploading… ${formatPercent(fraction, 0)}`;
    })
      .then((report) =>
        say(out, `${report.created.length} new images, ${report.duplicates.length} duplicates. Superpixels are computed by a worker.`),
      )
      .catch((error: unknown) => say(out, message(error), false));
  };
  picker.addEventListener("change", () => send([...(picker.files ?? [])]));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    send([...(event.dataTransfer?.files ?? [])]);
  });
  return h("section", { class: "panel" }, h("h2", {}, "Upload images"), h("label", {}, "Split ", split), zone, meter, out);
}

function simulationsPanel(project: ProjectDetail): HTMLElement {
  const out = feedback();
  const list = h("ul", { class: "rows" });
  const load = (): void => {
    void dashboardApi.simulations(project.id).then((simulations) => {
      list.replaceChildren(
        ...simulations.map((s) => {
          const remove = h("button", { type: "button", class: "ghost" }, "Remove");
          remove.addEventListener("click", () => void dashboardApi.deleteSimulation(project.id, s.id).then(load));
          return h("li", {}, h("span", {}, s.name, " ", h("span", { class: "muted" }, `${s.rows} rows · ${s.strategies.join(", ")}`)), remove);
        }),
      );
    });
  };
  const picker = h("input", { type: "file", accept: ".jsonl,application/x-ndjson,application/json" });
  picker.addEventListener("change", () => {
    const file = picker.files?.[0];
    if (!file) return;
    dashboardApi
      .uploadSimulation(project.id, file)
      .then(() => {
        say(out, "Stored: the learning curve now shows its strategies.");
        load();
      })
      .catch((error: unknown) => say(out, message(error), false));
  });
  load();
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Simulations"),
    h("p", { class: "muted small" }, "Upload the rounds.jsonl written by `tessera simulate` on a labeled sample to compare strategies on the learning curve."),
    list,
    h("label", {}, "rounds.jsonl ", picker),
    out,
  );
}

function exportPanel(project: ProjectDetail): HTMLElement {
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Export"),
    h(
      "div",
      { class: "actions" },
      h("a", { class: "button", href: dashboardApi.exportUrl(project.id, "zip"), download: "", "data-action": "export-zip" }, "Masks (zip)"),
      h("a", { class: "button", href: dashboardApi.exportUrl(project.id, "coco"), download: "", "data-action": "export-coco" }, "COCO JSON"),
    ),
  );
}

export const managePage: Page = async (root, params) => {
  const projectId = Number(params.projectId);
  const user = await currentUser();
  const project = await leadProject(root, projectId, user);
  if (!project) return;
  root.append(
    frame(
      user,
      h(
        "div",
        { class: "dashboard" },
        projectNav(project, "manage"),
        h("div", { class: "two-columns" }, settingsForm(project), h("div", {}, uploadPanel(project), exportPanel(project))),
        h("div", { class: "two-columns" }, h("div", {}, membersPanel(project), invitationsPanel(project)), classesPanel(project)),
        simulationsPanel(project),
      ),
    ),
  );
  root.querySelector(".content")?.classList.add("wide");
};
