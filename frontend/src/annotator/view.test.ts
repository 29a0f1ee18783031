import { describe, expect, it } from "vitest";
import { MAX_SCALE, fitView, focusView, panBy, screenToImage, zoomAt } from "./view";

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

describe("focusView", () => {
  it("centres a superpixel at about a third of the stage, never below the fit scale", () => {
    const view = focusView({ x0: 100, y0: 50, x1: 160, y1: 80 }, 900, 600, 0.5);
    expect(view.scale).toBeCloseTo(600 / 180);
    const centre = screenToImage(view, 450, 300);
    expect(centre.x).toBeCloseTo(130);
    expect(centre.y).toBeCloseTo(65);
    expect(focusView({ x0: 0, y0: 0, x1: 2000, y1: 1000 }, 900, 600, 0.4).scale).toBe(0.4);
    expect(focusView({ x0: 5, y0: 5, x1: 6, y1: 6 }, 900, 600, 0.4).scale).toBe(8);
  });
});
