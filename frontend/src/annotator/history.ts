/**
 * Undo/redo as two stacks of compact diffs (changed pixel indices with their values before
 * and after), bounded by memory: the oldest edits are forgotten first. An edit may carry a
 * tag (the model's pre-fill) so that the workspace can tell whether such an edit is still in
 * effect after undos and redos.
 */
import { type Diff, diffBytes } from "./mask";

export type ApplyValues = (indices: Uint32Array, values: Uint8Array) => void;

export class History {
  private readonly done: Diff[] = [];
  private readonly undone: Diff[] = [];
  private bytes = 0;
  private readonly tags = new WeakMap<Diff, string>();
  /** Tags of edits forgotten while done: they can no longer be undone, so stay in effect. */
  private readonly permanent = new Set<string>();

  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  get canUndo(): boolean {
    return this.done.length > 0;
  }

  get canRedo(): boolean {
    return this.undone.length > 0;
  }

  /** Records an edit that has already been applied; clears the redo stack. */
  push(diff: Diff, tag?: string): void {
    if (tag !== undefined) this.tags.set(diff, tag);
    this.done.push(diff);
    this.bytes += diffBytes(diff);
    for (const dropped of this.undone.splice(0)) this.bytes -= diffBytes(dropped);
    while (this.bytes > this.maxBytes && this.done.length > 1) {
      const forgotten = this.done.shift() as Diff;
      this.bytes -= diffBytes(forgotten);
      const tag = this.tags.get(forgotten);
      if (tag !== undefined) this.permanent.add(tag);
    }
  }

  /** Whether an edit pushed with `tag` is in effect: done and not undone (or no longer undoable). */
  isDone(tag: string): boolean {
    return this.permanent.has(tag) || this.done.some((diff) => this.tags.get(diff) === tag);
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
    this.permanent.clear();
  }
}
