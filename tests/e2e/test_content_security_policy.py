"""The built UI works under its Content-Security-Policy: an annotator paints and a lead reads
the dashboard in Chromium with the policy enforced, and the browser reports no violation."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.scenario import labeling_project
from tests.e2e.server import ADMIN_EMAIL, Server
from tests.e2e.workspace_page import MASK_CANVAS, WorkspacePage, interior_point, log_in

# Runs before the app's scripts; listeners added this way are not subject to the page's CSP.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def strict_page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A page with the server's CSP enforced; yields it with the problems seen so far."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    context.add_init_script(RECORD_VIOLATIONS)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    yield opened, problems
    context.close()


def _violations(page: Page) -> list[str]:
    return [str(v) for v in page.evaluate("window.__violations || []")]


def test_the_ui_runs_under_its_content_security_policy(
    server: Server, admin: httpx.Client, strict_page: tuple[Page, list[str]]
) -> None:
    page, problems = strict_page
    project = labeling_project(server, admin)
    queried = project.images[0]

    response = page.goto(f"{server.base_url}/")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    log_in(page, server.base_url, project.annotator)
    page.wait_for_url(f"**/projects/{project.project_id}/label")
    page.locator("body[data-paintable]").wait_for(state="attached")
    page.locator(MASK_CANVAS).wait_for()
    workspace = WorkspacePage(page, project.width, project.height)
    x, y, _ = interior_point(queried.pixels_of(queried.queried[0]))
    workspace.press("3")
    workspace.click(x, y)
    assert workspace.progress()[0] == 1
    workspace.press("?")  # the help overlay
    assert not problems and not _violations(page), (problems, _violations(page))

    # The lead's dashboard draws its charts (uPlot) under the same policy.
    page.context.clear_cookies()
    log_in(page, server.base_url, ADMIN_EMAIL)
    page.wait_for_load_state("networkidle")
    page.goto(f"{server.base_url}/projects/{project.project_id}/dashboard")
    page.locator("canvas").first.wait_for()
    page.wait_for_load_state("networkidle")
    assert not problems and not _violations(page), (problems, _violations(page))
