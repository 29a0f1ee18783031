/** The frame around non-workspace pages: brand, the user, logout. */
import { api } from "../api/client";
import type { User } from "../api/types";
import { h } from "./dom";
import { navigate } from "./navigation";
import { setCurrentUser } from "./session";

/** The signed-in user's email and a logout button. */
export function accountControls(user: User): HTMLElement {
  const logout = h("button", { type: "button", class: "ghost", "data-action": "logout" }, "Log out");
  logout.addEventListener("click", () => {
    void api.logout().finally(() => {
      setCurrentUser(null);
      navigate("/login", { replace: true });
    });
  });
  return h("span", { class: "account" }, h("span", { class: "muted" }, user.email), logout);
}

export function frame(user: User | null, ...content: (Node | string)[]): HTMLElement {
  return h(
    "div",
    { class: "page" },
    h(
      "header",
      { class: "topbar" },
      h("a", { href: "/", "data-link": true, class: "brand" }, "Tessera"),
      h("span", { class: "spacer" }),
      user ? accountControls(user) : null,
    ),
    h("main", { class: "content" }, ...content),
  );
}
