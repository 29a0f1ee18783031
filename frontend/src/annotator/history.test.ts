import { describe, expect, it } from "vitest";
import { History } from "./history";
import type { Diff } from "./mask";

function diff(index: number, before: number, after: number, pixels = 1): Diff {
  const indices = Uint32Array.from({ length: pixels }, (_, k) => index + k);
  return { indices, before: new Uint8Array(pixels).fill(before), after: new Uint8Array(pixels).fill(after) };
}

describe("History tags (the pre-fill)", () => {
  const apply = (): void => undefined;

  it("is done after the push, not after undoing it, and again after redo", () => {
    const history = new History();
    history.push(diff(0, 255, 1), "prefill");
    expect(history.isDone("prefill")).toBe(true);
    expect(history.undo(apply)).toBe(true);
    expect(history.isDone("prefill")).toBe(false);
    expect(history.redo(apply)).toBe(true);
    expect(history.isDone("prefill")).toBe(true);
  });

  it("stays done under later edits and is gone once a new edit replaces the undone one", () => {
    const history = new History();
    history.push(diff(0, 255, 1), "prefill");
    history.push(diff(5, 1, 2));
    history.undo(apply); // only the correction
    expect(history.isDone("prefill")).toBe(true);
    history.undo(apply); // the pre-fill too
    expect(history.isDone("prefill")).toBe(false);
    history.push(diff(7, 255, 3)); // clears the redo stack: the pre-fill cannot come back
    expect(history.redo(apply)).toBe(false);
    expect(history.isDone("prefill")).toBe(false);
  });

  it("counts an edit forgotten by the memory bound as done for good", () => {
    const history = new History(40); // bytes: one 4-pixel diff is 24
    history.push(diff(0, 255, 1, 4), "prefill");
    history.push(diff(8, 255, 2, 4)); // 48 bytes > 40: the pre-fill is forgotten
    expect(history.undo(apply)).toBe(true);
    expect(history.canUndo).toBe(false);
    expect(history.isDone("prefill")).toBe(true);
  });

  it("knows no tag it was not given", () => {
    const history = new History();
    history.push(diff(0, 255, 1));
    expect(history.isDone("prefill")).toBe(false);
  });
});
