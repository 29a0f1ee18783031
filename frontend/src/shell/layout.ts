/** The frame around non-workspace pages: brand, the user, logout. */
import { api } from "../api/client";
import type { User } from "../api/types";
import { h } from "./dom";
import { navigate } from "./navigation";
import { setCurrentUser } from "./session";

export function frame(user: User | null, ...content: (Node | string)[]): HTMLElement {
  const logout = h("button", { type: "button", class: "ghost", "data-action": "logout" }, "Log out");
  logout.addEventListener("click", () => {
    void api.logout().finally(() => {
      setCurrentUser(null);
      navigate("/login", { replace: true });
    });
  });
  return h(
    "div",
    { class: "page" },
    h(
      "header",
      { class: "topbar" },
      h("a", { href: "/", "data-link": true, class: "brand" }, "Tessera"),
      h("span", { class: "spacer" }),
      user ? h("span", { class: "muted" }, user.email) : null,
      user ? logout : null,
    ),
    h("main", { class: "content" }, ...content),
  );
}
