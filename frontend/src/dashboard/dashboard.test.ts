import { describe, expect, it } from "vitest";
import type { CurrentRound, JobRead, Jobs } from "./api";
import { miouRange } from "./chart";
import { formatCount, formatEta, formatHours, formatPercent } from "./format";
import { binCounts, median } from "./histogram";
import { isBusy, jobName, jobsState } from "./jobs";
import { fitLog, projectedMiou, projectionSamples } from "./projection";

describe("binCounts", () => {
  it("puts every count in exactly one bin of equal width", () => {
    const counts = [3, 4, 4, 9, 12, 20, 20, 20, 5];
    const bins = binCounts(counts, 4);
    expect(bins.reduce((sum, bin) => sum + bin.images, 0)).toBe(counts.length);
    expect(bins[0]).toEqual({ low: 3, high: 7, images: 4 });
    expect(bins.at(-1)).toEqual({ low: 18, high: 20, images: 3 });
    for (const bin of bins) expect(bin.high - bin.low).toBeLessThanOrEqual(4);
  });

  it("gives one bin per count when the range is small, none for no images", () => {
    expect(binCounts([2, 2, 3], 8)).toEqual([
      { low: 2, high: 2, images: 2 },
      { low: 3, high: 3, images: 1 },
    ]);
    expect(binCounts([])).toEqual([]);
  });

  it("refuses what cannot be a count", () => {
    expect(() => binCounts([1.5])).toThrow(RangeError);
    expect(() => binCounts([1], 0)).toThrow(RangeError);
  });

  it("finds the median", () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
  });
});

describe("projection", () => {
  it("fits mIoU = a + b ln(pixels) exactly through points on such a curve", () => {
    const xs = [1e4, 3e4, 1e5, 4e5];
    const ys = xs.map((x) => 0.1 + 0.05 * Math.log(x));
    const fit = fitLog(xs, ys);
    expect(fit?.a).toBeCloseTo(0.1, 10);
    expect(fit?.b).toBeCloseTo(0.05, 10);
  });

  it("matches numpy's least squares on scattered points", () => {
    // np.polyfit(np.log([1536, 1856, 3000]), [0.40, 0.55, 0.58], 1) -> b, a
    const fit = fitLog([1536, 1856, 3000], [0.4, 0.55, 0.58]);
    expect(fit?.b).toBeCloseTo(0.228527, 5);
    expect(fit?.a).toBeCloseTo(-1.232096, 5);
  });

  it("needs two distinct positive pixel counts", () => {
    expect(fitLog([0, 100], [0.1, 0.2])).toBeNull();
    expect(fitLog([100, 100], [0.1, 0.2])).toBeNull();
  });

  it("samples the curve log-evenly and clamps it to 0..1", () => {
    const [xs, ys] = projectionSamples({ a: -1, b: 0.2 }, 10, 1e6, 3);
    expect(xs[0]).toBeCloseTo(10);
    expect(xs[1]).toBeCloseTo(Math.sqrt(10 * 1e6));
    expect(xs[2]).toBeCloseTo(1e6);
    expect(ys[0]).toBe(0);
    expect(ys[1]).toBeCloseTo(-1 + 0.2 * Math.log(Math.sqrt(1e7)));
    expect(ys[2]).toBe(1);
    expect(projectedMiou({ a: 2, b: 0 }, 5)).toBe(1);
  });
});

describe("format", () => {
  it("writes counts, hours, percentages and ETAs", () => {
    expect(formatCount(1234)).toBe("1,234");
    expect(formatCount(1_234_567)).toBe("1.23 M");
    expect(formatHours(0.25)).toBe("15 min");
    expect(formatHours(0.2)).toBe("12 min");
    expect(formatHours(65 / 60)).toBe("1 h 05 min");
    expect(formatHours(2.26)).toBe("2 h 16 min");
    expect(formatHours(20 / 3600)).toBe("20 s"); // real work never reads "0 min"
    expect(formatPercent(0.8071)).toBe("80.7 %");
    expect(formatPercent(null)).toBe("–");
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(formatEta("2026-01-01T00:01:18Z", now)).toBe("about 1 min 20 s");
    expect(formatEta("2026-01-01T00:00:45Z", now)).toBe("about 45 s");
    expect(formatEta("2026-01-01T00:02:00Z", now)).toBe("about 2 min");
    expect(formatEta("2026-01-01T00:45:00Z", now)).toBe("about 45 min");
    expect(formatEta("2026-01-01T02:05:00Z", now)).toBe("about 2 h 05 min");
    expect(formatEta("2025-12-31T00:00:00Z", now)).toBe("any moment");
    expect(formatEta(null, now)).toBe("–");
  });
});

describe("chart", () => {
  it("ranges the mIoU axis around the points", () => {
    expect(miouRange(38.2, 51)).toEqual([30, 60]);
    expect(miouRange(2, 99)).toEqual([0, 100]);
    expect(miouRange(null, null)).toEqual([0, 100]);
  });
});

describe("jobs polling", () => {
  const job = (id: number, status: JobRead["status"], progress: number): JobRead => ({
    id,
    project_id: 1,
    round_id: 1,
    kind: "round",
    status,
    progress,
    message: "",
    error: null,
    celery_task_id: null,
    created_at: "2026-01-01T00:00:00Z",
    started_at: null,
    finished_at: null,
    eta_at: null,
    heartbeat_at: null,
    worker: null,
    takeovers: 0,
  });
  const jobs = (status: JobRead["status"], progress: number, round: CurrentRound["status"]): Jobs => ({
    jobs: [job(3, status, progress)],
    current_round: { id: 1, number: 1, status: round, queries: 4, queries_done: 0 },
    can_start_round: false,
    oracle_available: false,
  });

  it("is busy while a job is queued or running or the round is being prepared", () => {
    expect(isBusy(jobs("running", 0.5, "training"))).toBe(true);
    expect(isBusy(jobs("succeeded", 1, "scoring"))).toBe(true);
    expect(isBusy(jobs("succeeded", 1, "labeling"))).toBe(false);
  });

  it("sees a state change when a job ends, not when it progresses", () => {
    expect(jobsState(jobs("running", 0.2, "training"))).toBe(jobsState(jobs("running", 0.7, "training")));
    expect(jobsState(jobs("running", 0.7, "training"))).not.toBe(jobsState(jobs("succeeded", 1, "training")));
    expect(jobsState(jobs("succeeded", 1, "training"))).not.toBe(jobsState(jobs("succeeded", 1, "labeling")));
  });

  it("names jobs by round number and stage, not by job id", () => {
    const numbers = new Map([[1, 2]]); // round id 1 is round 2
    const current: CurrentRound = { id: 1, number: 2, status: "training", queries: 0, queries_done: 0 };
    expect(jobName(job(5, "running", 0.3), numbers, current)).toBe("round 2 · training");
    expect(jobName(job(5, "succeeded", 1), numbers, { ...current, status: "labeling" })).toBe("round 2");
    expect(jobName({ ...job(6, "running", 0.1), kind: "oracle" }, numbers, null)).toBe("round 2 · oracle");
    expect(jobName(job(7, "queued", 0), new Map(), current)).toBe("round 2");
    expect(jobName(job(8, "queued", 0), new Map(), null)).toBe("round (job 8)");
    expect(jobName({ ...job(9, "running", 0), round_id: null, kind: "ingest" }, numbers, null)).toBe("image upload");
  });
});
