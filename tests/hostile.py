"""A generator of hostile requests against the Tessera API, and a harness that sends them.

Families (each a function of one ``random.Random``, so a seed replays a run exactly):
bombs (pixel and zip), polyglots, zip tricks (traversal, absolute and NUL names, nesting,
lying sizes, encryption, entry floods), wrong masks (size, values, channels, bit depth,
lossy), corrupted and truncated images, huge and negative numbers, NUL and control
characters, deep JSON, traversal and overlong file names, hostile ``If-Match`` and ids.

``check_inputs`` sends them through the app (in process, every request a real ASGI call on
real PostgreSQL or SQLite) and checks after each one: no 5xx, no file written outside the
data directory, and, when the answer is a refusal (4xx), a database identical to before
(every table's row count and a hash of its rows). Used by
tests/backend/test_hostile_inputs.py at a few hundred inputs and by bench/hostile_inputs.py
at 10,000 or more.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import Engine, MetaData, select

from core.models import Base
from tests.backend.builders import png_bytes, rgb_image

MASK_WIDTH, MASK_HEIGHT = 32, 24


@dataclass(frozen=True)
class Target:
    """Ids of a seeded project the requests aim at."""

    project: int
    image: int
    round: int
    query: int
    other_project: int


@dataclass
class HostileInput:
    family: str
    method: str
    path: str
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    data: dict[str, str] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: list[tuple[str, str]] | None = None


# --- files ---------------------------------------------------------------------------------


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_claiming(width: int, height: int, depth: int = 8, colour: int = 0) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height``: a pixel bomb."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def encoded(array: Any, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def zip_of(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as bundle:
        for name, data in entries:
            bundle.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


@cache
def good_png() -> bytes:
    return png_bytes(rgb_image(16, 12, seed=1))


@cache
def zip_bomb() -> bytes:
    """Zeros that deflate a thousandfold: far past any inflate limit."""
    return zip_of([("bomb.png", b"\x00" * (24 * 1024 * 1024))])


def _lying_zip(rng: random.Random) -> bytes:
    data = bytearray(zip_of([("liar.png", b"\x00" * (1024 * 1024))]))
    fake = struct.pack("<I", rng.choice([0, 1, 10, 2**32 - 1]))
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 22 : local + 26] = fake
    data[central + 24 : central + 28] = fake
    return bytes(data)


def _flag_encrypted(archive: bytes) -> bytes:
    data = bytearray(archive)
    data[data.find(b"PK\x03\x04") + 6] |= 1
    data[data.find(b"PK\x01\x02") + 8] |= 1
    return bytes(data)


def _symlink_zip(target: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        info = zipfile.ZipInfo("link.png")
        info.external_attr = (0o120777 << 16) | 0x20  # a symlink in Unix mode bits
        info.create_system = 3
        bundle.writestr(info, target)
    return buffer.getvalue()


def _bit_flips(rng: random.Random, data: bytes, flips: int) -> bytes:
    mutated = bytearray(data)
    for _ in range(flips):
        position = rng.randrange(len(mutated))
        mutated[position] ^= 1 << rng.randrange(8)
    return bytes(mutated)


def hostile_name(rng: random.Random) -> str:
    return rng.choice(
        [
            "../../../../tmp/tessera-escape.png",
            "..\\..\\..\\tessera-escape.png",
            "/etc/passwd",
            "/tmp/tessera-escape.png",
            "C:\\Windows\\tessera-escape.png",
            "a\x00b.png",
            "nul\x00.png",
            "\u202egnp.exe",
            "con.png",
            "x" * rng.choice([255, 256, 1000, 5000]) + ".png",
            "..",
            ".",
            "",
            " ",
            "%2e%2e%2ftessera-escape.png",
            "名前.png",
            "\ud800.png".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
            "a\nb\r\nc.png",
            "<script>alert(1)</script>.png",
            "image.png/../../tessera-escape.png",
        ]
    )


def polyglot(rng: random.Random) -> tuple[str, bytes]:
    png = good_png()
    html = b"<html><script>alert(document.domain)</script></html>"
    return rng.choice(
        [
            ("poly.png", png + zip_of([("evil.html", html)])),
            ("poly.png", png + html),
            ("poly.png", png[:33] + _chunk(b"tEXt", b"Comment\x00" + html) + png[33:]),
            ("poly.gif", b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00*/=alert(1)//;"),
            ("poly.pdf", b"%PDF-1.4\n" + png),
            ("poly.html", html + png),
            ("poly.jpg", b"\xff\xd8\xff\xe0" + html + b"\xff\xd9"),
            ("poly.svg", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"),
            ("poly.png", zip_of([("a.png", png)]) + png),
        ]
    )


def hostile_image(rng: random.Random) -> tuple[str, str, bytes]:
    """(family, file name, bytes) of an upload meant to be refused or stored harmlessly."""
    kind = rng.choice(
        [
            "pixel bomb",
            "zip bomb",
            "zip trick",
            "polyglot",
            "bit flips",
            "truncated",
            "wrong format",
            "hostile name",
            "empty or tiny",
        ]
    )
    if kind == "pixel bomb":
        side = rng.choice([5_000, 20_000, 65_535, 100_000, 2**31 - 1])
        return kind, "bomb.png", png_claiming(side, rng.choice([side, 1, 7]))
    if kind == "zip bomb":
        return kind, "bomb.zip", zip_bomb()
    if kind == "zip trick":
        trick = rng.randrange(8)
        png = good_png()
        archive = [
            lambda: zip_of([(hostile_name(rng), png)]),
            lambda: zip_of([("inner.zip", zip_of([("a.png", png)]))]),
            lambda: zip_of([("inner.png", zip_of([("a.png", png)]))]),
            lambda: _lying_zip(rng),
            lambda: _flag_encrypted(zip_of([("secret.png", png)])),
            lambda: zip_of([(f"{i}.png", png) for i in range(rng.choice([21, 200]))]),
            lambda: _symlink_zip("/etc/passwd"),
            lambda: b"PK\x03\x04" + bytes(rng.randrange(256) for _ in range(60)),
        ][trick]()
        return kind, "bundle.zip", archive
    if kind == "polyglot":
        name, data = polyglot(rng)
        return kind, name, data
    if kind == "bit flips":
        return kind, "flipped.png", _bit_flips(rng, good_png(), rng.choice([1, 4, 32]))
    if kind == "truncated":
        data = good_png()
        return kind, "cut.png", data[: rng.randrange(1, len(data))]
    if kind == "wrong format":
        grey = np.zeros((12, 16), np.uint8)
        fmt = rng.choice(["GIF", "BMP", "TIFF", "ICO", "PPM"])
        return kind, f"wrong.{fmt.lower()}", encoded(grey, fmt)
    if kind == "hostile name":
        return kind, hostile_name(rng), good_png()
    return kind, "tiny.png", rng.choice([b"", b"\x89PNG", b"\x89PNG\r\n\x1a\n", png_claiming(1, 1)])


def hostile_mask(rng: random.Random) -> tuple[str, bytes]:
    """(kind, PNG-ish bytes) of a mask that breaks a rule: size, values, channels, format."""
    h, w = MASK_HEIGHT, MASK_WIDTH
    kind = rng.choice(
        ["wrong size", "not a class", "rgb", "16-bit", "palette", "alpha", "jpeg", "bomb", "flips"]
    )
    if kind == "wrong size":
        return kind, png_bytes(np.zeros((rng.randrange(1, 64), rng.randrange(1, 64)), np.uint8))
    if kind == "not a class":
        return kind, png_bytes(np.full((h, w), rng.randrange(3, 255), np.uint8))
    if kind == "rgb":
        return kind, png_bytes(np.zeros((h, w, 3), np.uint8))
    if kind == "16-bit":
        return kind, encoded(np.full((h, w), 70000 % 65536, np.uint16), "PNG")
    if kind == "palette":
        buffer = io.BytesIO()
        PILImage.fromarray(np.zeros((h, w, 3), np.uint8)).convert("P").save(buffer, "PNG")
        return kind, buffer.getvalue()
    if kind == "alpha":
        return kind, png_bytes(np.zeros((h, w, 4), np.uint8))
    if kind == "jpeg":
        return kind, encoded(np.zeros((h, w), np.uint8), "JPEG")
    if kind == "bomb":
        return kind, png_claiming(rng.choice([5_000, 70_000]), rng.choice([5_000, 70_000]))
    return kind, _bit_flips(rng, png_bytes(np.zeros((h, w), np.uint8)), 8)


# --- numbers, text and JSON ----------------------------------------------------------------


def huge_number(rng: random.Random) -> Any:
    return rng.choice(
        [
            2**31,
            2**63,
            2**64,
            -(2**63) - 1,
            10**400,
            -1,
            0,
            1e308,
            -1e308,
            5e-324,
            float(2**53 + 1),
        ]
    )


def hostile_text(rng: random.Random) -> str:
    return rng.choice(
        [
            "a\x00b",
            "\x00",
            "x" * 100_000,
            "\u202eevil",
            "\U0001f600" * 10,
            "\x1b[31mred",
            "' OR 1=1 --",
            "<img src=x onerror=alert(1)>",
            "../../etc/passwd",
            "\r\nSet-Cookie: x=y",
            "",
            " ",
        ]
    )


def deep_json(depth: int, opener: str = "[") -> str:
    closer = "]" if opener == "[" else "}"
    if opener == "{":
        return '{"a":' * depth + "1" + closer * depth
    return opener * depth + closer * depth


def hostile_json_value(rng: random.Random) -> Any:
    choice = rng.randrange(6)
    if choice == 0:
        return huge_number(rng)
    if choice == 1:
        return hostile_text(rng)
    if choice == 2:
        return None
    if choice == 3:
        return rng.choice([[], {}, [None], {"": None}, True, False])
    if choice == 4:
        return [hostile_text(rng)] * rng.choice([1, 300])
    return rng.choice(["NaN", "Infinity", "-Infinity"])


def _json_body(value: dict[str, Any]) -> bytes:
    # Python's encoder writes NaN/Infinity and 5,000-digit integers, as an attacker would.
    text = json.dumps(value, allow_nan=True, default=str)
    return text.replace('"NaN"', "NaN").replace('"Infinity"', "Infinity").encode()


PROJECT_FIELDS = [
    "name",
    "description",
    "superpixel_size",
    "superpixel_algorithm",
    "strategy",
    "static_fraction",
    "uncertainty",
    "mc_samples",
    "initial_images",
    "images_per_round",
    "budget_pixels",
    "budget_hours",
    "classes",
]


def simulation_file(rng: random.Random) -> tuple[str, bytes]:
    good = {"strategy": "dynamic", "round": 1, "labeled_pixel_fraction": 0.1, "val_miou": 0.4}
    kind = rng.randrange(8)
    if kind == 0:
        return "deep json", deep_json(rng.choice([1_000, 100_000]), rng.choice("[{")).encode()
    if kind == 1:
        return "huge number", ('{"round": ' + "9" * rng.choice([400, 5_000]) + "}").encode()
    if kind == 2:
        row = {**good, "val_miou": "NaN", "extra": "Infinity"}
        return "nan", _json_body(row)
    if kind == 3:
        return "not utf-8", b"\xff\xfe" + bytes(rng.randrange(256) for _ in range(64))
    if kind == 4:
        row = {**good, rng.choice(list(good)): hostile_json_value(rng)}
        return "hostile value", _json_body(row)
    if kind == 5:
        row = {**good, "strategy": "a\x00b"}
        return "nul", json.dumps(row).encode()
    if kind == 6:
        return "nested extra", json.dumps({**good, "extra": json.loads(deep_json(30))}).encode()
    return "many lines", ((json.dumps(good) + "\n") * 10 + deep_json(5_000) + "\n").encode()


# --- the generator -------------------------------------------------------------------------


def _id(rng: random.Random, real: int) -> str:
    return str(
        rng.choice(
            [
                real,
                2**31,
                2**31 - 1,
                2**63,
                2**64,
                10**30,
                -1,
                0,
                "1e3",
                "0x10",
                "%00",
                "..%2f..%2f",
                " 1",
                "1.0",
                "١",
            ]
        )
    )


def generate(rng: random.Random, target: Target) -> HostileInput:
    """One hostile request against ``target``'s project."""
    p = f"/api/v1/projects/{target.project}"
    family = rng.choice(
        [
            "image upload",
            "image upload",
            "image upload",
            "ground truth",
            "mask save",
            "if-match",
            "project json",
            "simulation",
            "ids",
            "login",
            "query strings",
        ]
    )
    if family == "image upload":
        count = rng.choice([1, 1, 1, 2, 3])
        files = []
        families = []
        for _ in range(count):
            kind, name, data = hostile_image(rng)
            families.append(kind)
            files.append(("files", (name, data, rng.choice(["image/png", "application/zip"]))))
        split = rng.choice(["pool", "validation", "test", "train", "\x00", ""])
        return HostileInput(
            f"upload: {families[0]}", "POST", f"{p}/images", files, {"split": split}
        )
    if family == "ground truth":
        kind, data = hostile_mask(rng)
        url = f"{p}/images/{target.image}/ground-truth"
        return HostileInput(
            f"ground truth: {kind}", "PUT", url, [("file", ("t.png", data, "image/png"))]
        )
    if family == "mask save":
        kind, data = hostile_mask(rng)
        return HostileInput(
            f"mask save: {kind}",
            "PUT",
            f"{p}/images/{target.image}/mask",
            content=data,
            headers={"Content-Type": "image/png", "If-Match": '"0"'},
            params=[("clicks", str(huge_number(rng))), ("seconds", str(huge_number(rng)))],
        )
    if family == "if-match":
        value = rng.choice(
            [str(2**64), '"' + "9" * 400 + '"', '"-1"', "W/", '"0', "*", "\x00", " " * 10, "0x1"]
        )
        return HostileInput(
            "if-match",
            "PUT",
            f"{p}/images/{target.image}/mask",
            content=png_bytes(np.full((MASK_HEIGHT, MASK_WIDTH), 255, np.uint8)),
            headers={"Content-Type": "image/png", "If-Match": value.replace("\x00", "")},
        )
    if family == "project json":
        body: dict[str, Any] = {
            name: hostile_json_value(rng)
            for name in rng.sample(PROJECT_FIELDS, rng.randrange(1, 4))
        }
        method, url = rng.choice([("PATCH", p), ("POST", "/api/v1/projects")])
        if rng.random() < 0.1:
            content = deep_json(rng.choice([100, 10_000]), rng.choice("[{")).encode()
        elif rng.random() < 0.1:
            field_name = rng.choice(PROJECT_FIELDS)
            content = f'{{"{field_name}": {"9" * rng.choice([400, 5_000])}}}'.encode()
        else:
            content = _json_body(body)
        return HostileInput(
            "project json",
            method,
            url,
            content=content,
            headers={"Content-Type": "application/json"},
        )
    if family == "simulation":
        kind, data = simulation_file(rng)
        return HostileInput(
            f"simulation: {kind}",
            "POST",
            f"{p}/dashboard/simulations",
            [("file", ("rounds.jsonl", data, "application/json"))],
            {"name": rng.choice(["run", "a\x00b", "x" * 300])},
        )
    if family == "ids":
        url = rng.choice(
            [
                f"/api/v1/projects/{_id(rng, target.project)}/images/{_id(rng, target.image)}",
                f"/api/v1/projects/{_id(rng, target.project)}/rounds/{_id(rng, target.round)}",
                f"{p}/tasks/{_id(rng, target.query)}/release",
                f"{p}/jobs/{_id(rng, 1)}",
                f"/api/v1/projects/{_id(rng, target.other_project)}/members/{_id(rng, 1)}",
            ]
        )
        method = "POST" if url.endswith("release") else rng.choice(["GET", "DELETE"])
        return HostileInput("ids", method, url)
    if family == "login":
        body = {"email": hostile_text(rng), "password": hostile_text(rng)}
        return HostileInput(
            "login",
            "POST",
            "/api/v1/auth/login",
            content=_json_body(body),
            headers={"Content-Type": "application/json"},
        )
    # Past a few thousand characters a URL is refused by the client library itself.
    params = [
        (rng.choice(["exclude", "limit", "offset", "map_id", "split", "format"]), str(value)[:2000])
        for value in (hostile_json_value(rng) for _ in range(rng.randrange(1, 4)))
    ]
    url = rng.choice(
        [f"{p}/tasks/next", f"{p}/images", f"{p}/images/{target.image}/superpixels", f"{p}/jobs"]
    )
    return HostileInput("query strings", "POST" if "tasks" in url else "GET", url, params=params)


def generate_many(seed: int, count: int, target: Target) -> Iterator[HostileInput]:
    rng = random.Random(seed)
    for _ in range(count):
        yield generate(rng, target)


# --- the checks ----------------------------------------------------------------------------


# Tables whose job is to record refused requests: failed logins (throttling) and stale
# mask saves (the dashboard's conflict count).
RECORDS_REFUSALS = {"login_throttles", "save_conflicts"}
# Columns any authenticated request may touch.
BOOKKEEPING = {("api_tokens", "last_used_at")}


def database_fingerprint(engine: Engine) -> dict[str, tuple[int, str]]:
    """Every table's row count and a SHA-256 of its rows in primary-key order."""
    metadata: MetaData = Base.metadata
    fingerprint: dict[str, tuple[int, str]] = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name in RECORDS_REFUSALS:
                continue
            digest = hashlib.sha256()
            rows = 0
            columns = [c for c in table.columns if (table.name, c.name) not in BOOKKEEPING]
            query = select(*columns).order_by(*table.primary_key.columns)
            for row in connection.execute(query):
                digest.update(repr(tuple(row)).encode())
                rows += 1
            fingerprint[table.name] = (rows, digest.hexdigest())
    return fingerprint


# Where a traversal name from hostile_name would land if a path were ever built from it.
ESCAPE_TARGETS = [Path("/tmp/tessera-escape.png"), Path("/tessera-escape.png")]


def files_outside(root: Path, data_dir: Path) -> set[Path]:
    """Files under ``root`` (the working directory of the run) that are not under
    ``data_dir``, and any of ESCAPE_TARGETS that exists."""
    found = {target for target in ESCAPE_TARGETS if target.exists()}
    for directory, _, names in os.walk(root):
        if Path(directory).is_relative_to(data_dir):
            continue
        found.update(Path(directory) / name for name in names)
    return found


@dataclass
class HostileReport:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_family: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    changed_on_refusal: list[str] = field(default_factory=list)
    escaped_files: list[str] = field(default_factory=list)

    @property
    def refused(self) -> int:
        return sum(count for status, count in self.statuses.items() if 400 <= status < 500)


def check_inputs(
    client: TestClient,
    engine: Engine,
    inputs: Iterator[HostileInput],
    *,
    headers: dict[str, str],
    sandbox: Path,
    data_dir: Path,
    on_each: Callable[[HostileInput, int], None] | None = None,
) -> HostileReport:
    """Sends each input; records 5xx, database changes on refusals and escaped files."""
    report = HostileReport()
    before_files = files_outside(sandbox, data_dir)
    fingerprint = database_fingerprint(engine)
    for hostile in inputs:
        response = client.request(
            hostile.method,
            hostile.path,
            files=hostile.files,
            data=hostile.data,
            content=hostile.content,
            params=hostile.params,
            headers={**headers, **hostile.headers},
        )
        report.sent += 1
        report.statuses[response.status_code] += 1
        report.by_family[hostile.family] += 1
        label = f"{hostile.family}: {hostile.method} {hostile.path[:120]}"
        if response.status_code >= 500:
            report.server_errors.append(f"{label} -> {response.status_code} {response.text[:200]}")
        after = database_fingerprint(engine)
        if 400 <= response.status_code < 500 and after != fingerprint:
            changed = sorted(name for name in after if after[name] != fingerprint.get(name))
            report.changed_on_refusal.append(f"{label} -> {response.status_code} changed {changed}")
        fingerprint = after
        escaped = files_outside(sandbox, data_dir) - before_files
        if escaped:
            report.escaped_files.append(f"{label} wrote {sorted(map(str, escaped))[:5]}")
            before_files |= escaped
        if on_each is not None:
            on_each(hostile, response.status_code)
    return report
