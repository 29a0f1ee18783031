"""Tessera's annotator against Label Studio's brush: same browser, same figures, same clock.

``bench/browser_annotator.py`` reads main-thread busy time in thread CPU time (CDP
``timeDomain: threadTicks``) while the Label Studio anchor
(``labelstudio_ui_anchor.py``, the incumbent's published browser figures) reads it in
wall-clock (CDP's default ``timeTicks``): on a loaded machine a thread waits for a core, and
CPU time then reads up to half of the wall-clock. This bench measures Tessera exactly as the
anchor measures Label Studio and prints both side by side with ratios:

- ``load_to_ready_ms``: a new tab per load (same browser profile), ``page.goto`` waiting for
  the commit only; an init script samples every animation frame from document start and stamps
  ``performance.now()`` (ms since navigation start) two frames after the view is ready (Tessera:
  the workspace set ``body[data-paintable]``; Label Studio: image decoded, Konva stage and
  brush tool present). Three loads per size; also the Python wall-clock from ``goto``.
- strokes: brush by hotkey (``b``), a class (Tessera: key ``3``; Label Studio: clicks the
  ``road`` chip), then mouse down, 200 moves zig-zagging over 10..90 % of the displayed image
  (4 periods), up. Frame intervals from an injected rAF loop inside [down, up] (p50/p95/max),
  long tasks overlapping that window and in the second after it, the stroke's wall time
  (Python clock around down..up) and the renderer's main-thread busy time during down..up from
  ``Performance.getMetrics``, read on two CDP sessions at once: wall-clock (``timeTicks``, the
  anchor's) and thread CPU time (``threadTicks``, what ``browser_annotator.py`` reports).
  Strokes 1-3 are the repetitions (medians reported), strokes 4-11 are drawn too, and stroke
  11 has 10 strokes before it. Strokes add to the mask (no undo in between), as in the anchor.
- submit: Tessera asks for confirmation when asked superpixels are left unlabeled, so the
  clock starts at the confirming Enter and stops at the PATCH's response (Label Studio: click
  on Submit to the POST's response); the body size of each.

Same Chromium, flags (``--disable-gpu``: software raster) and viewport (1600x1000) for both.
Images: Label Studio gets the first CamVid training frame (480x360 JPEG) and its 2048x1024
upscale; Tessera gets a generated street scene of the same size (PNG) with SLIC superpixels
of size 24 and the dynamic rule's queries, as in ``browser_annotator.py``.

Usage::

    .venv/bin/python bench/browser_compare.py --labelstudio-venv /work/lsvenv
    .venv/bin/python bench/browser_compare.py --labelstudio-results ui_results.json

With ``--labelstudio-venv`` (Label Studio and Playwright installed into it) the anchor runs in
the same invocation right after Tessera, so both see the same machine load; the load average
before and after each part is printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, CDPSession, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.e2e

from bench.browser_annotator import busy_metrics
from tests.e2e.scenario import labeling_project
from tests.e2e.server import (
    ADMIN_EMAIL,
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    Server,
    fresh_database,
    login,
    running_server,
)
from tests.e2e.workspace_page import MASK_CANVAS, log_in, wait_paintable

# The shared folder next to the checkout, as for the CamVid data (../shared/datasets).
ANCHOR = REPO.parent / "shared" / "anchors" / "labelstudio_ui_anchor.py"
VIEWPORT = (1600, 1000)  # the anchor's
N_MOVES = 200
REPS = 3
EXTRA_STROKES = 8  # strokes 4..11: the last has 10 strokes before it
LOADS = 3
CLASS_KEY = "3"  # the brush's class (the anchor clicks its 'road' chip)

# The anchor's READY_INIT with Tessera's readiness condition: the workspace marks the body
# once the task is drawn and takes input; then two more frames, as for Label Studio.
READY_INIT = r"""
(() => {
  window.__ready = null;
  let phase = 0;
  function check() {
    if (window.__ready !== null) return;
    if (document.body && document.body.dataset.paintable !== undefined) {
      phase += 1;
      if (phase >= 3) { window.__ready = performance.now(); return; }
    } else { phase = 0; }
    requestAnimationFrame(check);
  }
  requestAnimationFrame(check);
})();
"""

# The anchor's PERF_START: a rAF loop recording frame timestamps and a long-task observer.
PERF_START = r"""
() => {
  window.__frames = []; window.__long = [];
  window.__rafOn = true;
  const loop = (ts) => {
    window.__frames.push(ts); if (window.__rafOn) requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
  if (window.__lto) window.__lto.disconnect();
  window.__lto = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__long.push([e.startTime, e.duration]);
  });
  window.__lto.observe({type: 'longtask', buffered: false});
  return performance.now();
}
"""

SUMMARY_KEYS = (
    "frame_p50_ms",
    "frame_p95_ms",
    "frame_max_ms",
    "longtasks_n",
    "longtasks_total_ms",
    "stroke_wall_ms",
    "main_thread_task_ms",
    "main_thread_script_ms",
    "main_thread_task_cpu_ms",
    "main_thread_script_cpu_ms",
)


def loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (the anchor's ``pct``)."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def zigzag(box: list[float], n: int, periods: int = 4) -> list[tuple[float, float]]:
    """``n`` screen points over 10..90 % of the box's width, ``periods`` zig-zags high."""
    x, y, w, h = box
    points = []
    for i in range(n):
        f = i / (n - 1)
        tri = (f * periods * 2) % 2
        tri = tri if tri <= 1 else 2 - tri
        points.append((x + w * (0.10 + 0.80 * f), y + h * (0.20 + 0.60 * tri)))
    return points


def open_task(
    context: BrowserContext, url: str, timeout_s: float = 120
) -> tuple[Page, dict[str, float | None]]:
    """A new tab on ``url``; its load to ready, in-page and from Python."""
    page = context.new_page()
    page.add_init_script(READY_INIT)
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_function("window.__ready !== null", timeout=timeout_s * 1000, polling=100)
    wall = (time.perf_counter() - started) * 1000
    return page, {
        "ready_ms_inpage": rounded(float(page.evaluate("window.__ready"))),
        "ready_ms_python_wall": rounded(wall),
    }


def metric_delta(before: dict[str, float], after: dict[str, float], *names: str) -> float:
    return sum(after[name] - before[name] for name in names) * 1000


def do_stroke(
    page: Page, box: list[float], jitter: float, wall_cdp: CDPSession, cpu_cdp: CDPSession
) -> dict[str, Any]:
    """One brush stroke measured as the anchor measures it, plus thread CPU time."""
    points = zigzag([box[0], box[1] + jitter, box[2], box[3]], N_MOVES + 1)
    page.mouse.move(*points[0])
    page.wait_for_timeout(50)
    page.evaluate(PERF_START)
    page.wait_for_timeout(300)  # idle frames so the loop runs before mousedown
    t_down = float(page.evaluate("performance.now()"))
    wall0, cpu0 = busy_metrics(wall_cdp), busy_metrics(cpu_cdp)
    started = time.perf_counter()
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point)
    page.mouse.up()
    wall = (time.perf_counter() - started) * 1000
    wall1, cpu1 = busy_metrics(wall_cdp), busy_metrics(cpu_cdp)
    t_up = float(page.evaluate("performance.now()"))
    page.wait_for_timeout(1000)
    res = page.evaluate(
        "() => { window.__rafOn = false; return {frames: window.__frames, long: window.__long}; }"
    )
    frames = [f for f in res["frames"] if t_down <= f <= t_up]
    intervals = [b - a for a, b in itertools.pairwise(frames)]
    inside = [(s, d) for s, d in res["long"] if s + d >= t_down and s <= t_up]
    after = [(s, d) for s, d in res["long"] if s > t_up]
    return {
        "stroke_wall_ms": rounded(wall),
        "inpage_down_to_up_ms": rounded(t_up - t_down),
        "n_frames": len(frames),
        "frame_p50_ms": rounded(percentile(intervals, 50)),
        "frame_p95_ms": rounded(percentile(intervals, 95)),
        "frame_max_ms": rounded(max(intervals) if intervals else None),
        "longtasks_n": len(inside),
        "longtasks_total_ms": rounded(sum(d for _, d in inside)),
        "longtasks_max_ms": rounded(max((d for _, d in inside), default=0)),
        "after_up_1s_longtasks_n": len(after),
        "after_up_1s_longtasks_total_ms": rounded(sum(d for _, d in after)),
        "main_thread_task_ms": rounded(metric_delta(wall0, wall1, "TaskDuration")),
        "main_thread_script_ms": rounded(metric_delta(wall0, wall1, "ScriptDuration")),
        "main_thread_layout_style_ms": rounded(
            metric_delta(wall0, wall1, "LayoutDuration", "RecalcStyleDuration")
        ),
        "main_thread_task_cpu_ms": rounded(metric_delta(cpu0, cpu1, "TaskDuration")),
        "main_thread_script_cpu_ms": rounded(metric_delta(cpu0, cpu1, "ScriptDuration")),
    }


def submit(page: Page) -> dict[str, Any]:
    """Submit: the click (or, when asked superpixels are left unlabeled, the Enter that confirms
    it) to the PATCH's answer."""
    stat = page.locator('[data-stat="progress"]')
    complete = stat.get_attribute("data-labeled") == stat.get_attribute("data-queried")
    button = page.locator('[data-action="submit"]')
    if not complete:
        button.click()
        page.locator('[data-modal="confirm-submit"]').wait_for()
    started = time.perf_counter()
    with page.expect_response(
        lambda r: r.request.method == "PATCH" and "/mask" in r.url, timeout=120_000
    ) as answer:
        if complete:
            button.click()
        else:
            page.keyboard.press("Enter")
    response = answer.value
    elapsed = (time.perf_counter() - started) * 1000
    return {
        "click_to_response_ms": rounded(elapsed),
        "status": response.status,
        "confirmed": not complete,
        "request_body_bytes": len(response.request.post_data_buffer or b""),
    }


def bench_tessera_size(
    server: Server, admin: httpx.Client, context: BrowserContext, width: int, height: int
) -> dict[str, Any]:
    project = labeling_project(
        server, admin, width=width, height=height, images=2, superpixel_size=24
    )
    context.clear_cookies()  # the profile persists: sign in as this size's annotator
    page = context.new_page()
    log_in(page, server.base_url, project.annotator)
    wait_paintable(page)
    url = page.url
    page.close()
    result: dict[str, Any] = {"loads": [], "strokes": [], "queried": len(project.images[0].queried)}
    page, load = open_task(context, url)
    result["loads"].append(load)
    for _ in range(LOADS - 1):
        page.close()
        page, load = open_task(context, url)
        result["loads"].append(load)
    page.wait_for_timeout(1500)
    found = page.locator(MASK_CANVAS).bounding_box()
    assert found is not None
    box = [found["x"], found["y"], found["width"], found["height"]]
    result["img_box_at_stroke"] = box
    wall_cdp = context.new_cdp_session(page)
    wall_cdp.send("Performance.enable")  # timeTicks: wall-clock, as the anchor
    cpu_cdp = context.new_cdp_session(page)
    cpu_cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
    page.mouse.move(box[0] + box[2] / 2, box[1] + box[3] / 2)
    page.keyboard.press("b")
    page.keyboard.press(CLASS_KEY)
    page.wait_for_timeout(200)
    for s in range(REPS + EXTRA_STROKES):
        stroke = do_stroke(page, box, (s % 5) * 0.02 * box[3] - 0.04 * box[3], wall_cdp, cpu_cdp)
        stroke["strokes_before"] = s
        result["strokes"].append(stroke)
        page.wait_for_timeout(300)
    wall_cdp.detach()
    cpu_cdp.detach()
    result["submit"] = submit(page)
    page.wait_for_timeout(500)
    page.close()
    return result


def summarize(sizes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The anchor's ``summary`` shape (plus the thread-CPU figures)."""
    summary = {}
    for key, result in sizes.items():
        first = result["strokes"][:REPS]
        last = result["strokes"][-1]

        def median(name: str, runs: list[dict[str, Any]] = first) -> float | None:
            values = [run[name] for run in runs if run.get(name) is not None]
            return rounded(statistics.median(values)) if values else None

        summary[key] = {
            "load_to_ready_ms_each": [load["ready_ms_inpage"] for load in result["loads"]],
            "load_python_wall_ms_each": [load["ready_ms_python_wall"] for load in result["loads"]],
            "stroke_reps_median": {name: median(name) for name in SUMMARY_KEYS},
            "stroke_with_10_before": {"strokes_before": last["strokes_before"]}
            | {name: last.get(name) for name in SUMMARY_KEYS},
            "submit_click_to_response_ms": result["submit"]["click_to_response_ms"],
            "submit_body_bytes": result["submit"]["request_body_bytes"],
            "img_box_at_stroke": result["img_box_at_stroke"],
        }
    return summary


def run_tessera(
    size_keys: list[str], database: str, viewport: tuple[int, int] = VIEWPORT
) -> dict[str, Any]:
    if not (REPO / "frontend" / "dist" / "index.html").exists():
        subprocess.run(["bash", str(REPO / "scripts" / "frontend.sh")], check=True)
    out: dict[str, Any] = {"loadavg_start": loadavg(), "sizes": {}, "viewport": list(viewport)}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        with (
            fresh_database(database, directory) as url,
            running_server(url, directory, directory / "server.log") as server,
            sync_playwright() as playwright,
        ):
            admin = login(server, ADMIN_EMAIL)
            # A persistent profile as the anchor's; the CSP forbids Playwright's predicates.
            context = playwright.chromium.launch_persistent_context(
                str(directory / "profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": viewport[0], "height": viewport[1]},
                bypass_csp=True,
            )
            out["chromium"] = context.browser.version if context.browser else None
            for key in size_keys:
                width, height = (int(v) for v in key.split("x"))
                out["sizes"][key] = bench_tessera_size(server, admin, context, width, height)
                print(f"tessera {key} done (load {' '.join(loadavg())})", flush=True)
            context.close()
    out["loadavg_end"] = loadavg()
    out["summary"] = summarize(out["sizes"])
    return out


def run_labelstudio(venv: Path, anchor: Path, work: Path) -> dict[str, Any]:
    """Runs the anchor with the Label Studio venv's Python; returns its results JSON."""
    results = work / "ui_results.json"
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            str(anchor),
            "--ls-bin",
            str(venv / "bin" / "label-studio"),
            "--chromium",
            str(CHROMIUM),
            "--work",
            str(work),
            "--data-dir",
            str(work / "data"),
            "--out",
            str(results),
            "--screenshot",
            str(work / "ls_brush.png"),
        ],
        check=True,
        env=dict(
            os.environ,
            CAMVID=os.environ.get("CAMVID", str(anchor.parents[1] / "datasets" / "camvid")),
        ),
    )
    loaded: dict[str, Any] = json.loads(results.read_text())
    return loaded


Getter = Callable[[dict[str, Any]], Any]


def _median_of(name: str) -> Getter:
    return lambda s: statistics.median(s[name]) if s.get(name) else None


def _rep(name: str) -> Getter:
    return lambda s: s["stroke_reps_median"].get(name)


def _all(name: str) -> Getter:
    return lambda s: s.get("all_strokes_median", {}).get(name)


def _last(name: str) -> Getter:
    return lambda s: s["stroke_with_10_before"].get(name)


ROWS: list[tuple[str, Getter]] = [
    ("load -> ready, in-page (median of 3), ms", _median_of("load_to_ready_ms_each")),
    ("stroke wall time (200 moves), ms", _rep("stroke_wall_ms")),
    ("main-thread busy, wall-clock, ms", _rep("main_thread_task_ms")),
    ("  of which script, wall-clock, ms", _rep("main_thread_script_ms")),
    ("main-thread busy, thread CPU, ms", _rep("main_thread_task_cpu_ms")),
    ("frame interval p50, ms", _rep("frame_p50_ms")),
    ("frame interval p95, ms", _rep("frame_p95_ms")),
    ("frame interval max, ms", _rep("frame_max_ms")),
    ("long tasks during stroke, n", _rep("longtasks_n")),
    ("long tasks during stroke, total ms", _rep("longtasks_total_ms")),
    ("all 11 strokes: main-thread busy wall-clock, ms", _all("main_thread_task_ms")),
    ("all 11 strokes: stroke wall time, ms", _all("stroke_wall_ms")),
    ("all 11 strokes: long tasks, n (sum)", _all("longtasks_n_sum")),
    ("stroke 11 (10 before): wall, ms", _last("stroke_wall_ms")),
    ("stroke 11: main-thread busy wall-clock, ms", _last("main_thread_task_ms")),
    ("stroke 11: frame p95, ms", _last("frame_p95_ms")),
    ("submit -> save answered, ms", lambda s: s.get("submit_click_to_response_ms")),
    ("submit body, bytes", lambda s: s.get("submit_body_bytes")),
]


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(float(value)) >= 100 else f"{float(value):.1f}"


def add_all_strokes(results: dict[str, Any]) -> None:
    """Adds to each size's summary the medians over every stroke (the 3 repetitions are few
    on a loaded machine) and the long tasks of all strokes together."""
    for key, size in results["sizes"].items():
        strokes = size["strokes"]
        results["summary"][key]["all_strokes_median"] = {
            name: rounded(statistics.median(s[name] for s in strokes))
            for name in ("main_thread_task_ms", "stroke_wall_ms")
        } | {"longtasks_n_sum": sum(s["longtasks_n"] for s in strokes)}


def table(tessera: dict[str, Any], labelstudio: dict[str, Any] | None) -> str:
    """Markdown table per size: Tessera, Label Studio and Label Studio / Tessera."""
    lines = []
    for key, ours in tessera["summary"].items():
        theirs = (labelstudio or {}).get("summary", {}).get(key)
        lines += [
            f"\n{key}",
            "",
            "| | Tessera | Label Studio | LS / Tessera |",
            "|---|---|---|---|",
        ]
        for label, get in ROWS:
            a = get(ours)
            b = get(theirs) if theirs else None
            ratio = f"{b / a:.2f}x" if a not in (None, 0) and b is not None else "—"
            lines.append(f"| {label} | {_cell(a)} | {_cell(b)} | {ratio} |")
        ours_box = ours["img_box_at_stroke"]
        their_box = (
            labelstudio["sizes"][key].get("img_box_at_stroke") if theirs and labelstudio else None
        )
        shown = [f"{b[2]:.0f}x{b[3]:.0f}" if b else "—" for b in (ours_box, their_box)]
        lines.append(f"| image on screen, CSS px | {shown[0]} | {shown[1]} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="480x360,2048x1024")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--labelstudio-venv", type=Path, help="run the anchor in this run")
    source.add_argument("--labelstudio-results", type=Path, help="the anchor's results JSON")
    parser.add_argument("--anchor", type=Path, default=ANCHOR)
    parser.add_argument(
        "--viewport",
        default="x".join(map(str, VIEWPORT)),
        help="Tessera's only (the anchor's is 1600x1000): a narrower one shows the image as "
        "small as Label Studio does",
    )
    parser.add_argument("--out", type=Path, help="write both results as JSON here")
    args = parser.parse_args()

    width, height = (int(v) for v in args.viewport.split("x"))
    tessera = run_tessera(args.sizes.split(","), args.database, (width, height))
    start, end = tessera["loadavg_start"], tessera["loadavg_end"]
    print(f"Tessera: Chromium {tessera['chromium']}, load average {start} -> {end}")
    labelstudio: dict[str, Any] | None = None
    if args.labelstudio_venv:
        with tempfile.TemporaryDirectory() as work:
            labelstudio = run_labelstudio(args.labelstudio_venv, args.anchor, Path(work))
    elif args.labelstudio_results:
        labelstudio = json.loads(args.labelstudio_results.read_text())
    if labelstudio:
        print(
            f"Label Studio {labelstudio['versions'].get('label-studio')}: "
            f"load {labelstudio['machine']['loadavg_start']} -> {labelstudio.get('loadavg_end')}"
        )
    add_all_strokes(tessera)
    if labelstudio:
        add_all_strokes(labelstudio)
    print(table(tessera, labelstudio))
    if args.out:
        args.out.write_text(json.dumps({"tessera": tessera, "labelstudio": labelstudio}, indent=1))


if __name__ == "__main__":
    main()
