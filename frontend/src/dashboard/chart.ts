/**
 * The learning curve: this project's validation mIoU per round against the pixels its model
 * was trained on, the projection to the budget (dashed), and the oracle-simulated curves of
 * other strategies when a simulation was uploaded (their labeled-pixel fractions scaled to
 * this project's pool). Drawn with uPlot.
 */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { LearningCurve } from "./api";
import { formatCount } from "./format";
import { projectionSamples } from "./projection";

const STRATEGY_COLOURS = ["#ff8a65", "#4dd0e1", "#ba68c8", "#aed581", "#f06292", "#90a4ae"];

export interface CurveSeries {
  label: string;
  xs: number[];
  ys: number[];
  colour: string;
  dash?: number[];
  points: boolean;
}

/** The series to draw, in legend order (mIoU in percent). */
export function curveSeries(curve: LearningCurve): CurveSeries[] {
  const series: CurveSeries[] = [
    {
      label: "this project",
      xs: curve.points.map((p) => p.labeled_pixels),
      ys: curve.points.map((p) => p.miou * 100),
      colour: "#ffd600",
      points: true,
    },
  ];
  const last = curve.points.at(-1);
  if (curve.projection && last && last.labeled_pixels > 0 && curve.projection.at_pixels > last.labeled_pixels) {
    const [xs, ys] = projectionSamples(curve.projection, last.labeled_pixels, curve.projection.at_pixels);
    series.push({ label: "projection", xs, ys: ys.map((y) => y * 100), colour: "#ffd600", dash: [6, 5], points: false });
  }
  curve.simulated.forEach((simulated, k) => {
    series.push({
      label: `simulated ${simulated.strategy}`,
      xs: simulated.points.map((p) => p.labeled_pixels),
      ys: simulated.points.map((p) => p.miou_mean * 100),
      colour: STRATEGY_COLOURS[k % STRATEGY_COLOURS.length] as string,
      points: true,
    });
  });
  return series;
}

/** The y range (mIoU %) around the data: 5 points of margin, whole tens, within 0..100. */
export function miouRange(low: number | null, high: number | null): [number, number] {
  if (low === null || high === null || !Number.isFinite(low) || !Number.isFinite(high)) return [0, 100];
  return [Math.max(0, Math.floor((low - 5) / 10) * 10), Math.min(100, Math.ceil((high + 5) / 10) * 10)];
}

function aligned(series: CurveSeries[]): uPlot.AlignedData {
  const tables: uPlot.AlignedData[] = series.map((s) => {
    // uPlot wants increasing x; several points may share one x (repeat rounds at no spend).
    const order = s.xs.map((_, k) => k).sort((a, b) => (s.xs[a] as number) - (s.xs[b] as number));
    return [order.map((k) => s.xs[k] as number), order.map((k) => s.ys[k] as number)];
  });
  return uPlot.join(tables);
}

export class LearningCurveChart {
  private plot: uPlot | null = null;
  private signature = "";

  constructor(private readonly host: HTMLElement) {}

  update(curve: LearningCurve): void {
    const series = curveSeries(curve);
    const signature = series.map((s) => s.label).join("|");
    const data = aligned(series);
    if (this.plot && signature === this.signature) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.signature = signature;
    const width = Math.max(320, this.host.clientWidth || 640);
    this.plot = new uPlot(
      {
        width,
        height: 280,
        scales: {
          x: { time: false },
          // Room around the points, within 0..100: a fixed 0..100 flattens a curve that moves by a few points.
          y: { range: (_u, low, high) => miouRange(low, high) },
        },
        axes: [
          {
            stroke: "#9097a8",
            grid: { stroke: "#2e3340" },
            ticks: { stroke: "#2e3340" },
            label: "labeled pixels",
            values: (_u, ticks) => ticks.map((t) => formatCount(t)),
          },
          { stroke: "#9097a8", grid: { stroke: "#2e3340" }, ticks: { stroke: "#2e3340" }, label: "validation mIoU (%)" },
        ],
        series: [
          { label: "pixels", value: (_u, v) => (v === null ? "–" : formatCount(v)) },
          ...series.map((s) => ({
            label: s.label,
            stroke: s.colour,
            width: 2,
            spanGaps: true,
            ...(s.dash ? { dash: s.dash } : {}),
            points: { show: s.points, size: 7, fill: s.colour },
            value: (_u: uPlot, v: number | null) => (v === null ? "–" : v.toFixed(1)),
          })),
        ],
      },
      data,
      this.host,
    );
  }

  destroy(): void {
    this.plot?.destroy();
    this.plot = null;
  }
}
