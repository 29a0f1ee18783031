import { describe, expect, it } from "vitest";
import { type IdPage, REVIEW_SHORTCUTS, SCAN_PAGE, neighbours, reviewAction } from "./shortcuts";

const key = (k: string, more: Partial<Parameters<typeof reviewAction>[0]> = {}) =>
  reviewAction({ key: k, ctrlKey: false, metaKey: false, altKey: false, inTextField: false, ...more });

describe("review keys", () => {
  it("maps the listed keys to their actions", () => {
    expect([key("a"), key("S"), key("n"), key("ArrowRight"), key("p"), key("ArrowLeft")]).toEqual([
      "accept",
      "send-back",
      "next",
      "next",
      "previous",
      "previous",
    ]);
    expect(REVIEW_SHORTCUTS.map((s) => s.action)).toEqual(["accept", "send-back", "next", "previous", "leave-field"]);
  });

  it("leaves Enter, Space, modified keys and typing in a text field alone", () => {
    expect(key("Enter")).toBeNull();
    expect(key(" ")).toBeNull();
    expect(key("a", { ctrlKey: true })).toBeNull();
    expect(key("n", { metaKey: true })).toBeNull();
    expect(key("a", { inTextField: true })).toBeNull();
    expect(key("ArrowLeft", { inTextField: true })).toBeNull();
    expect(key("Escape", { inTextField: true })).toBe("leave-field");
    expect(key("Escape")).toBeNull();
  });
});

describe("neighbours in the browser's order", () => {
  const pages = (ids: number[]) => {
    const calls: number[] = [];
    const fetchPage = (offset: number, limit: number): Promise<IdPage> => {
      calls.push(offset);
      return Promise.resolve({ total: ids.length, items: ids.slice(offset, offset + limit).map((image_id) => ({ image_id })) });
    };
    return { calls, fetchPage };
  };

  it("finds the ids around the image, in the list or not", async () => {
    const { fetchPage } = pages([2, 5, 9, 14]);
    expect(await neighbours(fetchPage, 5)).toEqual({ previous: 2, next: 9 });
    expect(await neighbours(fetchPage, 7)).toEqual({ previous: 5, next: 9 }); // no longer matches
    expect(await neighbours(fetchPage, 2)).toEqual({ previous: null, next: 5 });
    expect(await neighbours(fetchPage, 14)).toEqual({ previous: 9, next: null });
    expect(await neighbours(pages([]).fetchPage, 3)).toEqual({ previous: null, next: null });
  });

  it("reads pages only until it passes the image, across page boundaries", async () => {
    const ids = Array.from({ length: 2 * SCAN_PAGE + 10 }, (_, k) => 10 * (k + 1));
    const found = pages(ids);
    const last = ids[SCAN_PAGE - 1] as number;
    expect(await neighbours(found.fetchPage, last)).toEqual({ previous: last - 10, next: last + 10 });
    expect(found.calls).toEqual([0, SCAN_PAGE]);
    const early = pages(ids);
    await neighbours(early.fetchPage, 25);
    expect(early.calls).toEqual([0]);
    const end = pages(ids);
    expect(await neighbours(end.fetchPage, 10_000)).toEqual({ previous: ids[ids.length - 1], next: null });
    expect(end.calls).toEqual([0, SCAN_PAGE, 2 * SCAN_PAGE]);
  });
});
