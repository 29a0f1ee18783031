/** The image browser's filters and how the address carries them (pure, no DOM). */
import type { components } from "../api/schema";

export type ImageState = components["schemas"]["ImageState"];

export const PAGE_SIZE = 24;

/** The states in the order an image passes through them. */
export const IMAGE_STATES: readonly ImageState[] = ["unlabeled", "asked", "submitted", "sent_back", "accepted"];

export function stateLabel(state: ImageState): string {
  return state === "sent_back" ? "sent back" : state;
}

export interface BrowseFilters {
  round_id?: number | null;
  state?: ImageState | null;
  annotator_id?: number | null;
  offset?: number | undefined;
  limit?: number | undefined;
}

export function filterQuery(filters: BrowseFilters): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) {
    if (value !== null && value !== undefined && value !== "") query.set(name, String(value));
  }
  return query.toString();
}

/** The filters as the address carries them. */
export function filtersFrom(query: URLSearchParams): BrowseFilters {
  const id = (name: string): number | null => {
    const value = Number(query.get(name));
    return Number.isInteger(value) && value > 0 ? value : null;
  };
  const state = query.get("state");
  return {
    round_id: id("round_id"),
    state: IMAGE_STATES.includes(state as ImageState) ? (state as ImageState) : null,
    annotator_id: id("annotator_id"),
    offset: Math.max(0, Number(query.get("offset")) || 0),
    limit: PAGE_SIZE,
  };
}

