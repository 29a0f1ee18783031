/**
 * /invite/:token — a new member opens the link a lead sent, chooses a password and is signed
 * in, landing on the project (the label page, or the dashboard for a lead).
 */
import { ApiError } from "../api/client";
import { reviewApi } from "../review/api";
import { h } from "../shell/dom";
import { navigate } from "../shell/navigation";
import type { Page } from "../shell/router";
import { setCurrentUser } from "../shell/session";

const MIN_PASSWORD = 10;

function reason(error: unknown): string {
  return error instanceof ApiError ? error.detail : error instanceof Error ? error.message : String(error);
}

export const invitePage: Page = async (root, params) => {
  const token = params.token ?? "";
  const card = h("div", { class: "login-card" }, h("h1", {}, "Join Tessera"));
  root.append(h("main", { class: "login" }, card));
  let preview;
  try {
    preview = await reviewApi.preview(token);
  } catch (error) {
    card.append(
      h("p", { class: "error", role: "alert", "data-invite": "refused" }, reason(error)),
      h("a", { href: "/login", "data-link": true }, "Go to the login page"),
    );
    return;
  }
  const name = h("input", { type: "text", name: "name", autocomplete: "name", value: preview.name, maxlength: 200 });
  const password = h("input", {
    type: "password",
    name: "password",
    autocomplete: "new-password",
    required: true,
    minlength: MIN_PASSWORD,
    "aria-describedby": "password-rule",
  });
  const again = h("input", { type: "password", name: "password-again", autocomplete: "new-password", required: true });
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Set password and join");
  const form = h(
    "form",
    { "data-form": "invite" },
    h(
      "p",
      {},
      "You are invited to ",
      h("strong", {}, preview.project_name),
      ` as ${preview.role === "lead" ? "a lead" : "an annotator"}.`,
    ),
    h("label", {}, "Email", h("input", { type: "email", value: preview.email, readonly: true, autocomplete: "username" })),
    h("label", {}, "Your name", name),
    h("label", {}, "Password", password),
    h(
      "p",
      { class: "muted small", id: "password-rule" },
      `At least ${MIN_PASSWORD} characters, not a common or easily guessed one (a few unrelated words work well).`,
    ),
    h("label", {}, "Password again", again),
    error,
    submit,
    h("p", { class: "muted small" }, `This link works once, until ${new Date(preview.expires_at).toLocaleString()}.`),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    error.textContent = "";
    if (password.value !== again.value) {
      error.textContent = "The two passwords differ.";
      again.select();
      return;
    }
    submit.disabled = true;
    reviewApi
      .accept(token, password.value, name.value.trim())
      .then((accepted) => {
        setCurrentUser(accepted.user);
        const landing = preview.role === "lead" ? "dashboard" : "label";
        navigate(`/projects/${accepted.project_id}/${landing}`, { replace: true });
      })
      .catch((failure: unknown) => {
        error.textContent = reason(failure);
        submit.disabled = false;
        password.select();
      });
  });
  card.append(form);
  password.focus();
};
