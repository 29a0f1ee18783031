/**
 * The learning curve's projection, drawn from the API's fit (mIoU = a + b·ln(pixels), least
 * squares over the rounds' points, computed server-side in backend/dashboard/service.py).
 */

export interface Fit {
  a: number;
  b: number;
}

export function projectedMiou(fit: Fit, pixels: number): number {
  if (!(pixels > 0)) throw new RangeError(`pixels must be positive, got ${pixels}`);
  return Math.min(1, Math.max(0, fit.a + fit.b * Math.log(pixels)));
}

/**
 * `samples` points of the fitted curve from `from` to `to` pixels, evenly spaced in
 * ln(pixels) so the curve's bend is drawn where it happens. Returns [xs, ys].
 */
export function projectionSamples(fit: Fit, from: number, to: number, samples = 24): [number[], number[]] {
  if (!(from > 0) || !(to >= from)) throw new RangeError(`need 0 < from <= to, got ${from}..${to}`);
  if (samples < 2) throw new RangeError(`samples must be at least 2, got ${samples}`);
  const xs: number[] = [];
  const ys: number[] = [];
  const low = Math.log(from);
  const high = Math.log(to);
  for (let k = 0; k < samples; k++) {
    const x = Math.exp(low + ((high - low) * k) / (samples - 1));
    xs.push(x);
    ys.push(projectedMiou(fit, x));
  }
  return [xs, ys];
}

/**
 * Least squares of y = a + b·ln(x) over the points with x > 0; null without two distinct x.
 * The same fit as the API's (used to check the two agree, and for client-side what-ifs).
 */
export function fitLog(xs: readonly number[], ys: readonly number[]): Fit | null {
  const pairs: [number, number][] = [];
  xs.forEach((x, k) => {
    if (x > 0) pairs.push([Math.log(x), ys[k] as number]);
  });
  if (new Set(pairs.map(([x]) => x)).size < 2) return null;
  const mx = pairs.reduce((sum, [x]) => sum + x, 0) / pairs.length;
  const my = pairs.reduce((sum, [, y]) => sum + y, 0) / pairs.length;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of pairs) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  const b = sxy / sxx;
  return { a: my - b * mx, b };
}
