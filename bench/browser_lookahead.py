"""Submit -> next paintable with and without the look-ahead (pages/lookahead.ts), in one run.

With the look-ahead, the label page downloads and decodes the task tasks/next will most
likely hand out next (GET .../tasks/upcoming, no lease) while the annotator works; a submit
whose claim hands out that task opens it without downloading it. Without it
(``localStorage["tessera.lookahead"] = "off"``), the next task is downloaded once claimed, as
before. Submits alternate off, on, off, on, ... in one browser session on one project (the
mode of a submit is the one in force when the task before it opened), each after the same
"work": fill everything with one key and THINK seconds; the time is the page's marks from
Enter to the next task paintable, as bench/browser_annotator.py reports it. Also: the long
tasks on the main thread while the annotator "works" (what the download ahead costs there).

Usage: ``.venv/bin/python bench/browser_lookahead.py [--sizes 480x360,2048x1024,4000x3000]
[--image-formats png,jpeg] [--repeats 3] [--think 5]`` (Chromium, PostgreSQL on 127.0.0.1,
a built front end; builds it if missing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository

from bench.browser_annotator import WATCH_LONG_TASKS, mark_time
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
from tests.e2e.workspace_page import WorkspacePage, log_in, wait_paintable


def set_lookahead(page: Page, on: bool) -> None:
    page.evaluate(
        "(on) => on ? localStorage.removeItem('tessera.lookahead') "
        ": localStorage.setItem('tessera.lookahead', 'off')",
        on,
    )


def submit_all(page: Page, task: int, think_s: float) -> tuple[int, list[float]]:
    """Works on the open task (THINK seconds, then fill all with class 1) and submits it;
    returns the next task's query id and the long tasks seen while working."""
    page.evaluate(WATCH_LONG_TASKS)
    time.sleep(think_s)
    long_tasks: list[float] = page.evaluate("window.__longTasks")
    workspace = WorkspacePage(page, 1, 1)
    workspace.press("g")
    workspace.press("1")
    workspace.press("Shift+G")
    workspace.press("Enter")
    return wait_paintable(page, previous=str(task)), long_tasks


def bench_size(
    server: Server,
    admin: httpx.Client,
    browser: Browser,
    width: int,
    height: int,
    image_format: str,
    repeats: int,
    think_s: float,
    superpixel_size: int,
) -> dict[str, Any]:
    modes = [k % 2 == 1 for k in range(2 * repeats)]  # off, on, off, on, ...
    seeded = time.perf_counter()
    project = labeling_project(
        server,
        admin,
        width=width,
        height=height,
        images=len(modes) + 2,  # a warm-up submit first, and one to open after the last
        superpixel_size=superpixel_size,
        image_format=image_format,
    )
    seed_s = time.perf_counter() - seeded
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    context.set_default_timeout(60_000)
    page = context.new_page()
    runs: dict[bool, list[float]] = {False: [], True: []}
    # Of which: Enter -> the next task's resources in hand (save, claim, downloads).
    fetched: dict[bool, list[float]] = {False: [], True: []}
    hits: dict[bool, int] = {False: 0, True: 0}
    longest: dict[bool, list[float]] = {False: [], True: []}
    try:
        log_in(page, server.base_url, project.annotator)
        task = wait_paintable(page)
        # Warm-up: the first task opened before the mode could be set.
        set_lookahead(page, modes[0])
        task, _ = submit_all(page, task, think_s)
        for k, on in enumerate(modes):
            if k + 1 < len(modes):
                set_lookahead(page, modes[k + 1])  # for the task this submit opens
            previous = task
            task, long_tasks = submit_all(page, task, think_s)
            submitted = mark_time(page, f"tessera:submit:{previous}")
            runs[on].append(mark_time(page, f"tessera:paintable:{task}") - submitted)
            fetched[on].append(mark_time(page, f"tessera:fetched:{task}") - submitted)
            hit = page.evaluate(
                "(name) => performance.getEntriesByName(name).length",
                f"tessera:lookahead-hit:{task}",
            )
            hits[on] += int(hit > 0)
            longest[on].append(max(long_tasks, default=0.0))
    finally:
        context.close()
    return {
        "size": f"{width}x{height} {image_format}",
        "seed_s": seed_s,
        "runs": runs,
        "fetched": fetched,
        "hits": hits,
        "longest": longest,
    }


def report(result: dict[str, Any], load: str) -> None:
    runs, hits, longest = result["runs"], result["hits"], result["longest"]
    fetched = result["fetched"]
    off, on = statistics.median(runs[False]), statistics.median(runs[True])
    print(f"\n== {result['size']} (seeded in {result['seed_s']:.0f} s; load {load})")
    for mode, name in ((False, "without look-ahead"), (True, "with look-ahead   ")):
        print(
            f"{name} submit -> next paintable median {statistics.median(runs[mode]):.0f} ms "
            f"(runs: {', '.join(f'{v:.0f}' for v in runs[mode])}; of which resources in hand "
            f"{statistics.median(fetched[mode]):.0f}; opened from the look-ahead "
            f"{hits[mode]}/{len(runs[mode])}); longest main-thread task while working "
            f"{max(longest[mode]):.0f} ms"
        )
    print(f"without / with  {off / max(on, 1e-6):.2f}x")


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="480x360,2048x1024,4000x3000")
    parser.add_argument("--image-formats", default="png,jpeg")
    parser.add_argument("--repeats", type=int, default=3, help="submits per mode")
    parser.add_argument("--think", type=float, default=5.0, help="seconds of 'work' per task")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--superpixel-size", type=int, default=24)
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]
    formats = args.image_formats.split(",")
    if not (REPO / "frontend" / "dist" / "index.html").exists():
        subprocess.run(["bash", str(REPO / "scripts" / "frontend.sh")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        with (
            fresh_database(args.database, directory) as url,
            running_server(url, directory, directory / "server.log") as server,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            admin = login(server, ADMIN_EMAIL)
            print(
                f"Chromium {browser.version}, database {args.database}, viewport 1280x800, "
                f"{args.repeats} submits per mode, {args.think:.0f} s of work per task"
            )
            for width, height in sizes:
                for image_format in formats:
                    before = load_average()
                    result = bench_size(
                        server,
                        admin,
                        browser,
                        width,
                        height,
                        image_format,
                        args.repeats,
                        args.think,
                        args.superpixel_size,
                    )
                    report(result, f"{before} -> {load_average()}")
            browser.close()


if __name__ == "__main__":
    main()
