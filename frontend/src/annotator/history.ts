/**
 * Undo/redo as two stacks of compact diffs (changed pixel indices with their values before
 * and after), bounded by memory: the oldest edits are forgotten first.
 */
import { type Diff, diffBytes } from "./mask";

export type ApplyValues = (indices: Uint32Array, values: Uint8Array) => void;

export class History {
  private readonly done: Diff[] = [];
  private readonly undone: Diff[] = [];
  private bytes = 0;

  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  get canUndo(): boolean {
    return this.done.length > 0;
  }

  get canRedo(): boolean {
    return this.undone.length > 0;
  }

  /** Records an edit that has already been applied; clears the redo stack. */
  push(diff: Diff): void {
    this.done.push(diff);
    this.bytes += diffBytes(diff);
    for (const dropped of this.undone.splice(0)) this.bytes -= diffBytes(dropped);
    while (this.bytes > this.maxBytes && this.done.length > 1) {
      this.bytes -= diffBytes(this.done.shift() as Diff);
    }
  }

  /** Reverts the newest edit through `apply`; false when there is nothing to undo. */
  undo(apply: ApplyValues): boolean {
    const diff = this.done.pop();
    if (diff === undefined) return false;
    apply(diff.indices, diff.before);
    this.undone.push(diff);
    return true;
  }

  redo(apply: ApplyValues): boolean {
    const diff = this.undone.pop();
    if (diff === undefined) return false;
    apply(diff.indices, diff.after);
    this.done.push(diff);
    return true;
  }

  clear(): void {
    this.done.length = 0;
    this.undone.length = 0;
    this.bytes = 0;
  }
}
