/**
 * The viewport: screen = image * scale + offset (CSS pixels, relative to the stage).
 */
import type { Rect } from "./geometry";

export interface View {
  scale: number;
  x: number;
  y: number;
}

export const MIN_SCALE = 0.02;
export const MAX_SCALE = 64;

/** The whole image centred in a `stageWidth` x `stageHeight` stage, `margin` px clear. */
export function fitView(
  imageWidth: number,
  imageHeight: number,
  stageWidth: number,
  stageHeight: number,
  margin = 12,
): View {
  const usableW = Math.max(1, stageWidth - 2 * margin);
  const usableH = Math.max(1, stageHeight - 2 * margin);
  const scale = clampScale(Math.min(usableW / imageWidth, usableH / imageHeight));
  return {
    scale,
    x: (stageWidth - imageWidth * scale) / 2,
    y: (stageHeight - imageHeight * scale) / 2,
  };
}

export function clampScale(scale: number): number {
  return Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale));
}

/** Zooms by `factor` keeping the image point under the screen point (sx, sy) in place. */
export function zoomAt(view: View, sx: number, sy: number, factor: number): View {
  const scale = clampScale(view.scale * factor);
  const ix = (sx - view.x) / view.scale;
  const iy = (sy - view.y) / view.scale;
  return { scale, x: sx - ix * scale, y: sy - iy * scale };
}

export function panBy(view: View, dx: number, dy: number): View {
  return { scale: view.scale, x: view.x + dx, y: view.y + dy };
}

/** Image coordinates (fractional pixels) of a stage point. */
export function screenToImage(view: View, sx: number, sy: number): { x: number; y: number } {
  return { x: (sx - view.x) / view.scale, y: (sy - view.y) / view.scale };
}

/**
 * A view centred on `rect` (image pixels) that shows it at about a third of the stage's
 * smaller side, but never zoomed out further than the whole image fits (`minScale`).
 */
export function focusView(
  rect: Rect,
  stageWidth: number,
  stageHeight: number,
  minScale: number,
  maxScale = 8,
): View {
  const size = Math.max(rect.x1 - rect.x0, rect.y1 - rect.y0, 1);
  const scale = clampScale(Math.min(maxScale, Math.max(minScale, Math.min(stageWidth, stageHeight) / (3 * size))));
  const cx = (rect.x0 + rect.x1) / 2;
  const cy = (rect.y0 + rect.y1) / 2;
  return { scale, x: stageWidth / 2 - cx * scale, y: stageHeight / 2 - cy * scale };
}
