"""Model inputs by image id, read from the database when indexed instead of all up front.

Training samples a few images per step from every labeled one; holding them all decoded
would grow with the pool. ``LazyImages`` is a read-only sequence that decodes an item when
it is first indexed and keeps the most recently used ones up to a byte budget
(``TESSERA_TRAIN_IMAGE_CACHE_MB``), so memory stays bounded and a small training set is
still decoded once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, overload

T = TypeVar("T")


class LazyImages(Sequence[T], Generic[T]):
    """``load(image_id)`` for each id, decoded when indexed, least recently used dropped
    first once the kept items pass ``cache_bytes`` (the item just read is always kept).

    ``size_of(item)``: its bytes in memory. ``loads`` counts reads, for tests and reports.
    """

    def __init__(
        self,
        image_ids: Sequence[int],
        load: Callable[[int], T],
        size_of: Callable[[T], int],
        cache_bytes: int,
    ) -> None:
        if cache_bytes < 0:
            raise ValueError(f"cache_bytes must be >= 0, got {cache_bytes}")
        self.image_ids = list(image_ids)
        self._load, self._size_of, self._budget = load, size_of, cache_bytes
        self._kept: OrderedDict[int, tuple[T, int]] = OrderedDict()
        self._kept_bytes = 0
        self.loads = 0

    def __len__(self) -> int:
        return len(self.image_ids)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        position = range(len(self))[index]  # IndexError past the end, as a list would
        kept = self._kept.get(position)
        if kept is not None:
            self._kept.move_to_end(position)
            return kept[0]
        item = self._load(self.image_ids[position])
        self.loads += 1
        size = self._size_of(item)
        self._kept[position] = (item, size)
        self._kept_bytes += size
        while self._kept_bytes > self._budget and len(self._kept) > 1:
            _, (_, dropped) = self._kept.popitem(last=False)
            self._kept_bytes -= dropped
        return item

    @property
    def kept_bytes(self) -> int:
        return self._kept_bytes
