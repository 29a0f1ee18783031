/** Axis-aligned pixel rectangles: x0, y0 inclusive; x1, y1 exclusive. */
export interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export const EMPTY_RECT: Readonly<Rect> = { x0: 0, y0: 0, x1: 0, y1: 0 };

export function isEmpty(rect: Rect): boolean {
  return rect.x1 <= rect.x0 || rect.y1 <= rect.y0;
}

/** The smallest rectangle holding both (an empty one counts as nothing). */
export function union(a: Rect, b: Rect): Rect {
  if (isEmpty(a)) return { ...b };
  if (isEmpty(b)) return { ...a };
  return {
    x0: Math.min(a.x0, b.x0),
    y0: Math.min(a.y0, b.y0),
    x1: Math.max(a.x1, b.x1),
    y1: Math.max(a.y1, b.y1),
  };
}

/** The rectangle covering the given flat pixel indices of a row-major image `width` wide. */
export function boundsOfIndices(indices: ArrayLike<number>, width: number): Rect {
  if (indices.length === 0) return { ...EMPTY_RECT };
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let k = 0; k < indices.length; k++) {
    const index = indices[k] as number;
    const y = (index / width) | 0;
    const x = index - y * width;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  return { x0, y0, x1: x1 + 1, y1: y1 + 1 };
}
