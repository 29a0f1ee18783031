import { ApiError, api } from "../api/client";
import { h } from "../shell/dom";
import type { Page } from "../shell/router";
import { setCurrentUser } from "../shell/session";
import { navigate } from "../shell/navigation";

/** Where to go after login: the `next` parameter when it is a local path, else home. */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export const loginPage: Page = (root, _params, query) => {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "error", role: "alert" });
  const expired =
    query.get("expired") === "1"
      ? h(
          "p",
          { class: "notice", role: "status", "data-notice": "expired" },
          "Your session expired — sign in again; your unsaved work was kept on this device.",
        )
      : null;
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h(
    "form",
    { class: "login-card" },
    h("h1", {}, "Tessera"),
    h("p", { class: "muted" }, "Label only what the model asks about."),
    expired,
    h("label", {}, "Email", email),
    h("label", {}, "Password", password),
    error,
    submit,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    api
      .login(email.value.trim(), password.value)
      .then((user) => {
        setCurrentUser(user);
        navigate(safeNext(query.get("next")), { replace: true });
      })
      .catch((reason: unknown) => {
        error.textContent =
          reason instanceof ApiError && reason.status === 401
            ? "Wrong email or password."
            : reason instanceof ApiError
              ? reason.detail
              : String(reason);
        submit.disabled = false;
        password.select();
      });
  });
  root.append(h("main", { class: "login" }, form));
  email.focus();
};
