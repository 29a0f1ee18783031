"""What the request id and the per-request JSON access line cost: in-process GETs of
``/api/v1/health`` (the cheapest route, so the overhead shows most) through the full app,
with the RequestId middleware and logging on, against the same app without the middleware,
alternating in blocks in one process. Prints medians per request and their ratio.

    .venv/bin/python bench/request_logging.py [requests]
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time

from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend import app as app_module
from backend.request_ids import RequestId
from core.settings import Settings


def _app(with_request_id: bool) -> FastAPI:
    app = app_module.create_app(Settings(database_url="sqlite://", log_level="info"))
    if not with_request_id:  # the app's own stack, minus the outermost RequestId layer
        stack = app.build_middleware_stack()
        assert isinstance(stack, RequestId)
        app.middleware_stack = stack.app
    # The lines are written (formatting included), to a sink rather than the terminal.
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    return app


def _block(client: TestClient, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        assert client.get("/api/v1/health").status_code == 200
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    logged = TestClient(_app(True))
    plain = TestClient(_app(False))
    assert "X-Request-ID" in logged.get("/api/v1/health").headers
    assert "X-Request-ID" not in plain.get("/api/v1/health").headers
    on: list[float] = []
    off: list[float] = []
    for _ in range(10):
        off += _block(plain, requests // 10)
        on += _block(logged, requests // 10)
    median_on, median_off = statistics.median(on), statistics.median(off)
    print(f"requests per variant: {requests}")
    print(f"median without request id/access log: {median_off:.3f} ms")
    print(f"median with request id + JSON access line: {median_on:.3f} ms")
    print(f"ratio (with / without): {median_on / median_off:.3f}")
    print(f"added per request: {(median_on - median_off) * 1000:.0f} us")


if __name__ == "__main__":
    main()
