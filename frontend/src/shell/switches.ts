/**
 * Switches a bench turns off to measure the path without a speed-up, in the same run:
 * `localStorage["tessera.<name>"] = "off"`. On unless set so (or storage is unavailable).
 */
export function switchedOn(name: "preview" | "lookahead"): boolean {
  try {
    return localStorage.getItem(`tessera.${name}`) !== "off";
  } catch {
    return true;
  }
}
