/** Numbers as the dashboard shows them. */

/** 1234 -> "1,234"; 1_234_567 -> "1.23 M"; 12_345_678_901 -> "12.3 G". */
export function formatCount(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toPrecision(3)} G`;
  if (abs >= 1e6) return `${(value / 1e6).toPrecision(3)} M`;
  return Math.round(value).toLocaleString("en-US");
}

export function formatHours(hours: number): string {
  if (hours < 1) return `${Math.round(hours * 60)} min`;
  return `${hours.toFixed(hours < 10 ? 1 : 0)} h`;
}

export function formatPercent(fraction: number | null | undefined, digits = 1): string {
  return fraction === null || fraction === undefined ? "–" : `${(fraction * 100).toFixed(digits)} %`;
}

export function formatMiou(miou: number | null | undefined): string {
  return miou === null || miou === undefined ? "–" : (miou * 100).toFixed(1);
}

/** Seconds until `iso` from `now`, as "1:05" or "2 h 3 min"; "now" when past. */
export function formatEta(iso: string | null, now: number): string {
  if (!iso) return "–";
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  if (seconds <= 0) return "now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

/** A budget line's value in its unit. */
export function formatUnit(unit: string, value: number | null): string {
  if (value === null) return "–";
  return unit === "hours" ? formatHours(value) : formatCount(value);
}
