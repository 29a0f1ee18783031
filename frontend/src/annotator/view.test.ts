import { describe, expect, it } from "vitest";
import { MAX_SCALE, fitView, panBy, screenToImage, zoomAt } from "./view";

describe("view", () => {
  it("fits and centres the image", () => {
    const view = fitView(2048, 1024, 1000, 600, 0);
    expect(view.scale).toBeCloseTo(1000 / 2048);
    expect(view.x).toBeCloseTo(0);
    expect(view.y).toBeCloseTo((600 - 1024 * view.scale) / 2);
  });

  it("zooms keeping the point under the cursor still", () => {
    const view = { scale: 0.5, x: 10, y: 20 };
    const before = screenToImage(view, 300, 200);
    const zoomed = zoomAt(view, 300, 200, 3);
    expect(zoomed.scale).toBeCloseTo(1.5);
    const after = screenToImage(zoomed, 300, 200);
    expect(after.x).toBeCloseTo(before.x);
    expect(after.y).toBeCloseTo(before.y);
    expect(zoomAt(view, 0, 0, 1e9).scale).toBe(MAX_SCALE);
  });

  it("pans by screen pixels", () => {
    expect(panBy({ scale: 2, x: 1, y: 2 }, 10, -5)).toEqual({ scale: 2, x: 11, y: -3 });
  });
});
