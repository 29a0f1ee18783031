/**
 * Superpixels queried per picked image, binned for the rounds table's small histogram (the
 * dynamic rule's signature: its counts spread, a static rule's pile up in one bin).
 */

export interface Bin {
  /** Inclusive lower and upper count of the bin. */
  low: number;
  high: number;
  images: number;
}

/**
 * Integer counts into at most `maxBins` bins of equal integer width covering min..max.
 * Every count lands in exactly one bin; an empty input gives no bins.
 */
export function binCounts(counts: readonly number[], maxBins = 8): Bin[] {
  if (counts.length === 0) return [];
  if (!Number.isInteger(maxBins) || maxBins < 1) throw new RangeError(`maxBins must be a positive integer, got ${maxBins}`);
  let min = Infinity;
  let max = -Infinity;
  for (const count of counts) {
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`counts must be non-negative integers, got ${count}`);
    min = Math.min(min, count);
    max = Math.max(max, count);
  }
  const width = Math.max(1, Math.ceil((max - min + 1) / maxBins));
  const bins: Bin[] = [];
  for (let low = min; low <= max; low += width) bins.push({ low, high: Math.min(low + width - 1, max), images: 0 });
  for (const count of counts) {
    const bin = bins[Math.floor((count - min) / width)];
    if (bin) bin.images += 1;
  }
  return bins;
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}
