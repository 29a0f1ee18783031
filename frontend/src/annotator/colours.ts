/** Colour lookup tables packed for a little-endian Uint32 view of RGBA ImageData. */

export function parseHex(hex: string): [number, number, number] {
  const match = /^#?([0-9a-f]{6})$/i.exec(hex);
  if (!match) return [255, 0, 255];
  const value = Number.parseInt(match[1] as string, 16);
  return [(value >> 16) & 0xff, (value >> 8) & 0xff, value & 0xff];
}

export function packRgba(r: number, g: number, b: number, a: number): number {
  return ((a << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

/** Class index -> packed colour; 255 (unlabeled) and unknown classes are transparent. */
export function classLut(classes: readonly { index: number; colour: string }[]): Uint32Array {
  const lut = new Uint32Array(256);
  for (const { index, colour } of classes) {
    if (index >= 0 && index < 255) {
      const [r, g, b] = parseHex(colour);
      lut[index] = packRgba(r, g, b, 255);
    }
  }
  return lut;
}

/** The heat ramp's colour stops: (position 0..1, r, g, b). */
const HEAT_STOPS: readonly [number, number, number, number][] = [
  [0, 0, 0, 4],
  [0.25, 87, 16, 110],
  [0.5, 188, 55, 84],
  [0.75, 249, 142, 9],
  [1, 252, 255, 164],
];

/** The heat ramp as a CSS gradient, left (low) to right (high), for the map's legend. */
export function heatGradientCss(): string {
  const stops = HEAT_STOPS.map(([t, r, g, b]) => `rgb(${r} ${g} ${b}) ${Math.round(t * 100)}%`);
  return `linear-gradient(to right, ${stops.join(", ")})`;
}

/** Uncertainty 0..255 -> a dark-to-bright heat ramp, more opaque where the model is unsure. */
export function heatLut(): Uint32Array {
  const stops = HEAT_STOPS;
  const lut = new Uint32Array(256);
  for (let v = 0; v < 256; v++) {
    const t = v / 255;
    let k = 0;
    while (k < stops.length - 2 && t > (stops[k + 1] as number[])[0]!) k += 1;
    const [t0, r0, g0, b0] = stops[k] as [number, number, number, number];
    const [t1, r1, g1, b1] = stops[k + 1] as [number, number, number, number];
    const f = (t - t0) / (t1 - t0);
    lut[v] = packRgba(
      Math.round(r0 + f * (r1 - r0)),
      Math.round(g0 + f * (g1 - g0)),
      Math.round(b0 + f * (b1 - b0)),
      Math.round(30 + 170 * t),
    );
  }
  return lut;
}
