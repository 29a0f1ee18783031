import { describe, expect, it } from "vitest";
import { ActiveTimer } from "./timer";

describe("ActiveTimer", () => {
  it("counts visible time and caps idle gaps", () => {
    let now = 0;
    const timer = new ActiveTimer(5, 60_000, () => now);
    now = 10_000;
    timer.touch();
    expect(timer.seconds).toBeCloseTo(15);
    now = 10_000 + 600_000; // ten minutes away: one minute counts
    timer.touch();
    expect(timer.seconds).toBeCloseTo(75);
    timer.setVisible(false);
    now += 30_000;
    expect(timer.seconds).toBeCloseTo(75);
    timer.setVisible(true);
    now += 2_000;
    expect(timer.seconds).toBeCloseTo(77);
  });
});
