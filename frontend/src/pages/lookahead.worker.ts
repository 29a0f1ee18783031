/**
 * The look-ahead's worker (lookahead.ts `prepareOffThread`): downloads the superpixel map and
 * the mask of the task fetched ahead, inflates the map (~24 MB at 12 Mpx), indexes its queried
 * superpixels and decodes the mask, each up to ~0.1 s of work that would otherwise stall a
 * stroke the annotator is painting meanwhile; the arrays are transferred back, not copied.
 */
import { api } from "../api/client";
import { decodeGreyPng } from "../annotator/png";
import { QueriedRegions } from "../annotator/superpixels";

export interface PrepareRequest {
  superpixelsLink: string;
  maskLink: string;
  queriedIds: number[];
}

const scope = self as unknown as Worker; // the DOM lib types `self` as a Window

scope.addEventListener("message", (event: MessageEvent<PrepareRequest>) => {
  const { superpixelsLink, maskLink, queriedIds } = event.data;
  void Promise.all([api.superpixels(superpixelsLink), api.mask(maskLink)])
    .then(async ([map, stored]) => {
      const mask = await decodeGreyPng(stored.png);
      const regions = QueriedRegions.build(map, queriedIds);
      const { width, height, labels, editable, ids, slotOf, start, pixels, bounds } = regions;
      const fields = { width, height, labels, editable, ids, slotOf, start, pixels, bounds };
      const arrays = [labels, editable, ids, slotOf, start, pixels, mask.pixels];
      scope.postMessage(
        { count: map.count, fields, mask, version: stored.version },
        arrays.map((array) => array.buffer as ArrayBuffer),
      );
    })
    .catch((error: unknown) => scope.postMessage({ error: String(error) }));
});
