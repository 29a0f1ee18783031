import "./styles.css";
import { onUnauthorized } from "./api/client";
import { ROUTES } from "./routes";
import { h } from "./shell/dom";
import { frame } from "./shell/layout";
import { navigate, setRouter } from "./shell/navigation";
import { Router } from "./shell/router";
import { currentUser, setCurrentUser } from "./shell/session";

const root = document.getElementById("app");
if (!root) throw new Error("index.html lacks #app");

const loginPath = (): string => `/login?next=${encodeURIComponent(location.pathname + location.search)}`;

const router = new Router(
  ROUTES,
  root,
  async (route) => {
    if (route.public) return null;
    return (await currentUser()) ? null : loginPath();
  },
  (container) => {
    container.append(
      frame(null, h("h1", {}, "Not found"), h("a", { href: "/", "data-link": true }, "Back to the projects")),
    );
  },
);
setRouter(router);

onUnauthorized(() => {
  setCurrentUser(null);
  // The login page then says the session expired (drafts of unsaved work stay in the browser).
  if (location.pathname !== "/login") navigate(`${loginPath()}&expired=1`, { replace: true });
});

router.start();
