/**
 * Time on task as the dashboard's cost accounting needs it: wall time while the page is
 * visible, where a gap between two inputs counts for at most `idleCapMs` (someone who walked
 * away is not paid for the coffee break, someone studying the image for a minute is).
 */
export class ActiveTimer {
  private totalMs = 0;
  private last: number;
  private visible = true;

  constructor(
    initialSeconds = 0,
    private readonly idleCapMs = 60_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.totalMs = initialSeconds * 1000;
    this.last = this.now();
  }

  /** Call on every input event. */
  touch(): void {
    const now = this.now();
    if (this.visible) this.totalMs += Math.min(now - this.last, this.idleCapMs);
    this.last = now;
  }

  setVisible(visible: boolean): void {
    this.touch();
    this.visible = visible;
  }

  /** When the last input came (the clock's milliseconds). */
  get lastInput(): number {
    return this.last;
  }

  /** Seconds so far (counting the time since the last input, capped). */
  get seconds(): number {
    const pending = this.visible ? Math.min(this.now() - this.last, this.idleCapMs) : 0;
    return (this.totalMs + pending) / 1000;
  }
}
