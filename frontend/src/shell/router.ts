/**
 * A small history-API router. A route is a path pattern ("/projects/:projectId/label") and a
 * page: a function that fills a container and returns its cleanup. The server answers every
 * non-API path with index.html, so deep links and reloads land here.
 *
 * Pages for the lead dashboard ([E]) register the same way, in routes.ts.
 */

function errorPanel(error: unknown): HTMLElement {
  const panel = document.createElement("div");
  panel.className = "page-error";
  const title = document.createElement("h1");
  title.textContent = "This page could not be shown";
  const detail = document.createElement("p");
  detail.className = "error";
  detail.setAttribute("role", "alert");
  detail.textContent = error instanceof Error ? error.message : String(error);
  const home = document.createElement("a");
  home.href = "/";
  home.dataset.link = "";
  home.textContent = "Back to the projects";
  panel.append(title, detail, home);
  return panel;
}

export type Params = Record<string, string>;

/** Mounts a page into `root`; returns a function that tears it down (listeners, timers). */
export type Page = (root: HTMLElement, params: Params, query: URLSearchParams) => (() => void) | void | Promise<(() => void) | void>;

export interface Route {
  pattern: string;
  page: Page;
  /** Pages that work without a session (the login page). */
  public?: boolean;
  title: string;
}

interface CompiledRoute extends Route {
  regex: RegExp;
  names: string[];
}

export function compile(pattern: string): { regex: RegExp; names: string[] } {
  const names: string[] = [];
  const source = pattern
    .split("/")
    .map((part) => {
      if (part.startsWith(":")) {
        names.push(part.slice(1));
        return "([^/]+)";
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  return { regex: new RegExp(`^${source}/?$`), names };
}

export function match(routes: readonly Route[], path: string): { route: Route; params: Params } | null {
  for (const route of routes) {
    const { regex, names } = compile(route.pattern);
    const found = regex.exec(path);
    if (!found) continue;
    const params: Params = {};
    names.forEach((name, k) => {
      params[name] = decodeURIComponent(found[k + 1] as string);
    });
    return { route, params };
  }
  return null;
}

export class Router {
  private readonly routes: CompiledRoute[];
  private cleanup: (() => void) | null = null;
  private generation = 0;

  constructor(
    routes: readonly Route[],
    private readonly root: HTMLElement,
    private readonly guard: (route: Route, path: string) => Promise<string | null>,
    private readonly notFound: Page,
  ) {
    this.routes = routes.map((route) => ({ ...route, ...compile(route.pattern) }));
  }

  start(): void {
    window.addEventListener("popstate", () => void this.render());
    document.addEventListener("click", (event) => {
      const target = event.target instanceof Element ? event.target.closest("a[data-link]") : null;
      if (!target || event.defaultPrevented || event.button !== 0) return;
      if (event.metaKey || event.ctrlKey || event.shiftKey) return;
      event.preventDefault();
      this.navigate(target.getAttribute("href") ?? "/");
    });
    void this.render();
  }

  navigate(path: string, { replace = false } = {}): void {
    if (replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
    void this.render();
  }

  private async render(): Promise<void> {
    const generation = ++this.generation;
    const path = location.pathname;
    const found = match(this.routes, path);
    if (found) {
      const redirect = await this.guard(found.route, path + location.search);
      if (generation !== this.generation) return;
      if (redirect !== null) {
        this.navigate(redirect, { replace: true });
        return;
      }
    }
    this.cleanup?.();
    this.cleanup = null;
    this.root.replaceChildren();
    document.title = found ? `${found.route.title} · Tessera` : "Not found · Tessera";
    const page = found ? found.route.page : this.notFound;
    let cleanup: (() => void) | void;
    try {
      cleanup = await page(this.root, found?.params ?? {}, new URLSearchParams(location.search));
    } catch (error) {
      if (generation !== this.generation) return;
      this.root.replaceChildren(errorPanel(error));
      return;
    }
    if (generation !== this.generation) {
      cleanup?.();
      return;
    }
    this.cleanup = cleanup ?? null;
  }
}
