/** Numbers as the dashboard shows them. */

/** 1234 -> "1,234"; 1_234_567 -> "1.23 M"; 12_345_678_901 -> "12.3 G". */
export function formatCount(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toPrecision(3)} G`;
  if (abs >= 1e6) return `${(value / 1e6).toPrecision(3)} M`;
  return Math.round(value).toLocaleString("en-US");
}

/** A duration: "45 s", "12 min", "1 h 05 min" (seconds shown only under a minute). */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  if (total < 60) return `${total} s`;
  const minutes = Math.round(total / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** Work time given in hours: "12 min", "1 h 05 min"; under a minute in seconds, never "0 min". */
export function formatHours(hours: number): string {
  return formatDuration(hours * 3600);
}

export function formatPercent(fraction: number | null | undefined, digits = 1): string {
  return fraction === null || fraction === undefined ? "–" : `${(fraction * 100).toFixed(digits)} %`;
}

export function formatMiou(miou: number | null | undefined): string {
  return miou === null || miou === undefined ? "–" : (miou * 100).toFixed(1);
}

/**
 * The time left until `iso` from `now`, as a duration (never a clock time): "about 45 s",
 * "about 1 min 20 s", "about 2 h 05 min"; "any moment" when past.
 */
export function formatEta(iso: string | null, now: number): string {
  if (!iso) return "–";
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  if (seconds <= 0) return "any moment";
  if (seconds >= 60 && seconds < 600) {
    const rounded = Math.round(seconds / 10) * 10; // an estimate: to 10 s
    const s = rounded % 60;
    return `about ${Math.floor(rounded / 60)} min${s ? ` ${s} s` : ""}`;
  }
  return `about ${formatDuration(seconds)}`;
}

/** A budget line's value in its unit. */
export function formatUnit(unit: string, value: number | null): string {
  if (value === null) return "–";
  return unit === "hours" ? formatHours(value) : formatCount(value);
}
