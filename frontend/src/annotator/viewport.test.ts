import { describe, expect, it } from "vitest";
import { isLargeImage, previewSize, sampleToScreen, screenRect, screenSampling } from "./viewport";

describe("screen sampling of large images", () => {
  it("takes the image pixel under each stage pixel's centre, -1 outside", () => {
    // Scale 2, image shifted 3 px right and 1 px down: stage x 3..4 show image x 0, and so on.
    const { columns, rows } = screenSampling({ scale: 2, x: 3, y: 1 }, 10, 6, 3, 2);
    expect(Array.from(columns)).toEqual([-1, -1, -1, 0, 0, 1, 1, 2, 2, -1]);
    expect(Array.from(rows)).toEqual([-1, 0, 0, 1, 1, -1]);
  });

  it("samples a mask through a colour table, transparent outside the image", () => {
    const mask = Uint8Array.from([0, 1, 2, 255, 0, 1]); // 3 x 2
    const lut = new Uint32Array(256);
    lut[0] = 10;
    lut[1] = 11;
    lut[2] = 12;
    lut[255] = 99;
    const view = { scale: 0.5, x: 1, y: 0 }; // zoomed out: every other image pixel
    const { columns, rows } = screenSampling(view, 4, 2, 3, 2);
    const out = new Uint32Array(8).fill(7);
    sampleToScreen(out, 4, { x0: 0, y0: 0, x1: 4, y1: 2 }, columns, rows, mask, 3, lut);
    // Stage x 1 samples image x 1 (centre 1.5 -> 1.0), stage x 2 image x 3: outside.
    expect(Array.from(columns)).toEqual([-1, 1, -1, -1]);
    expect(Array.from(rows)).toEqual([1, -1]);
    // Stage (1, 0) shows image (1, 1): class 0.
    expect(Array.from(out)).toEqual([0, 10, 0, 0, 0, 0, 0, 0]);
    const zoomed = screenSampling({ scale: 1, x: 0, y: 0 }, 4, 2, 3, 2);
    sampleToScreen(out, 4, { x0: 1, y0: 0, x1: 3, y1: 2 }, zoomed.columns, zoomed.rows, mask, 3, lut);
    // Only the rectangle is written; the rest keeps what was there.
    expect(Array.from(out)).toEqual([0, 11, 12, 0, 0, 10, 11, 0]);
  });

  it("maps an edited image rectangle to every stage pixel that samples it", () => {
    for (const view of [
      { scale: 0.27, x: 13.4, y: -7.9 },
      { scale: 1, x: 0, y: 0 },
      { scale: 3.7, x: -211.2, y: 40.5 },
    ]) {
      const stageWidth = 300;
      const stageHeight = 200;
      const { columns, rows } = screenSampling(view, stageWidth, stageHeight, 1000, 800);
      const rect = { x0: 40, y0: 30, x1: 57, y1: 41 };
      const screen = screenRect(rect, view, stageWidth, stageHeight);
      for (let sy = 0; sy < stageHeight; sy++) {
        for (let sx = 0; sx < stageWidth; sx++) {
          const ix = columns[sx] as number;
          const iy = rows[sy] as number;
          const inside = ix >= rect.x0 && ix < rect.x1 && iy >= rect.y0 && iy < rect.y1;
          if (!inside) continue;
          expect(sx >= screen.x0 && sx < screen.x1 && sy >= screen.y0 && sy < screen.y1).toBe(true);
        }
      }
    }
  });

  it("clips the stage rectangle to the stage", () => {
    const screen = screenRect({ x0: 0, y0: 0, x1: 100, y1: 100 }, { scale: 2, x: -50, y: -50 }, 64, 48);
    expect(screen).toEqual({ x0: 0, y0: 0, x1: 64, y1: 48 });
  });

  it("sizes previews within the pixel budget, aspect kept", () => {
    expect(previewSize(4000, 3000, 2_000_000)).toEqual({ width: 1632, height: 1224 });
    expect(previewSize(640, 480, 2_000_000)).toEqual({ width: 640, height: 480 });
    expect(isLargeImage(4000, 3000)).toBe(true);
    expect(isLargeImage(2048, 1024)).toBe(false);
  });
});
