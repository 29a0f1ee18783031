/**
 * The Manage page's invitations: a lead invites a new member by e-mail and gets a one-time
 * link to send them (shown once, with a copy button); pending links can be revoked.
 */
import { ApiError } from "../api/client";
import type { ProjectDetail, Role } from "../api/types";
import { type InvitationRead, reviewApi } from "../review/api";
import { h } from "../shell/dom";

function reason(error: unknown): string {
  return error instanceof ApiError ? error.detail : error instanceof Error ? error.message : String(error);
}

function row(project: ProjectDetail, invitation: InvitationRead, reload: () => void): HTMLElement {
  const state =
    invitation.state === "pending"
      ? `pending until ${new Date(invitation.expires_at).toLocaleDateString()}`
      : invitation.state;
  const revoke =
    invitation.state === "pending" ? h("button", { type: "button", class: "ghost" }, "Revoke") : null;
  revoke?.addEventListener("click", () => void reviewApi.revokeInvitation(project.id, invitation.id).then(reload));
  return h(
    "li",
    { "data-invitation": invitation.email, "data-state": invitation.state },
    h("span", {}, invitation.email, " ", h("span", { class: "muted" }, `${invitation.role} · ${state}`)),
    revoke,
  );
}

export function invitationsPanel(project: ProjectDetail): HTMLElement {
  const list = h("ul", { class: "rows" });
  const out = h("div", { class: "feedback small", role: "status" });
  const load = (): void => {
    void reviewApi.invitations(project.id).then((invitations) => {
      list.replaceChildren(...invitations.map((invitation) => row(project, invitation, load)));
    });
  };
  const email = h("input", { type: "email", name: "invite-email", required: true, placeholder: "email of the new member", "aria-label": "email to invite" });
  const name = h("input", { type: "text", name: "invite-name", placeholder: "name (optional)", "aria-label": "name of the invitee" });
  const role = h(
    "select",
    { name: "invite-role", "aria-label": "role of the invitee" },
    h("option", { value: "annotator" }, "annotator"),
    h("option", { value: "lead" }, "lead"),
  );
  const form = h("form", { class: "inline-form", "data-form": "invite" }, email, name, role, h("button", { type: "submit" }, "Invite"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    reviewApi
      .invite(project.id, { email: email.value.trim(), name: name.value.trim(), role: role.value as Role, expires_in_days: 7 })
      .then((created) => {
        const link = new URL(created.link, location.origin).href;
        const field = h("input", { type: "text", readonly: true, value: link, "data-testid": "invite-link", "aria-label": "invitation link" });
        const copy = h("button", { type: "button" }, "Copy");
        copy.addEventListener("click", () => {
          field.select();
          void navigator.clipboard?.writeText(link).then(() => (copy.textContent = "Copied"));
        });
        out.className = "feedback small ok";
        out.replaceChildren(
          `Send this link to ${created.email}; it works once, for 7 days, and is not shown again: `,
          field,
          copy,
        );
        email.value = "";
        name.value = "";
        load();
      })
      .catch((error: unknown) => {
        out.className = "feedback small error";
        out.textContent = reason(error);
      });
  });
  load();
  return h(
    "section",
    { class: "panel", "data-panel": "invitations" },
    h("h2", {}, "Invite a new member"),
    h("p", { class: "muted small" }, "For someone without an account: they open the link, choose a password and join with the role."),
    form,
    out,
    list,
  );
}
