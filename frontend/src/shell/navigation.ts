/** The app's router instance, reachable from pages without import cycles. */
import type { Router } from "./router";

let router: Router | null = null;

export function setRouter(instance: Router): void {
  router = instance;
}

export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (router) router.navigate(path, options);
  else location.assign(path);
}
