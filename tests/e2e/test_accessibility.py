"""axe-core over the login, workspace, dashboard and manage pages: no serious or critical
violations (WCAG 2 A/AA rules and axe's best practices, as axe-core ships them).

axe-core is the npm dev dependency in frontend/ (frontend/node_modules/axe-core/axe.min.js),
injected into the page by Playwright; nothing is fetched at run time.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.scenario import labeling_project
from tests.e2e.server import ADMIN_EMAIL, REPO, Server
from tests.e2e.workspace_page import log_in, wait_paintable

AXE = REPO / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe's serious and critical violations on the page as it is now."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: cd frontend && npm ci (scripts/frontend.sh does it)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => ({
                    id: v.id,
                    impact: v.impact,
                    help: v.help,
                    nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" ")),
                }));
        }"""
    )
    return violations


def test_login_and_workspace_have_no_serious_axe_violations(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin)
    page.goto(f"{server.base_url}/")
    page.wait_for_url("**/login**")
    expect(page.locator('input[name="email"]')).to_be_visible()
    assert serious_violations(page) == []

    log_in(page, server.base_url, project.annotator)
    wait_paintable(page)
    expect(page.locator("main")).to_have_count(1)
    expect(page.locator("h1")).to_have_count(1)
    assert serious_violations(page) == []

    # The uncertainty map comes with its legend: a low-to-high colour ramp.
    legend = page.locator('[data-legend="uncertainty"]')
    expect(legend).to_be_hidden()
    page.keyboard.press("u")
    expect(legend).to_be_visible()
    expect(legend).to_contain_text("low")
    expect(legend).to_contain_text("high")
    assert "linear-gradient" in (legend.locator(".heat-ramp").get_attribute("style") or "")
    page.keyboard.press("?")
    expect(page.locator(".help")).to_be_visible()
    assert serious_violations(page) == []


def test_dashboard_and_manage_have_no_serious_axe_violations(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin)
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, server.base_url, ADMIN_EMAIL)
    page.wait_for_function("!location.pathname.startsWith('/login')")
    page.goto(f"{server.base_url}/projects/{project.project_id}/dashboard")
    team = page.locator('[data-panel="team"]')
    expect(team.locator("table")).to_be_visible()
    assert serious_violations(page) == []
    # At 1440 px the team table fits its panel: nothing cut, no sideways scrolling.
    widths = team.evaluate("(panel) => [panel.scrollWidth, panel.clientWidth]")
    assert widths[0] <= widths[1] + 1, widths

    page.click("a.tab >> text=Manage")
    page.wait_for_url(f"**/projects/{project.project_id}/manage")
    expect(page.locator('[data-form="settings"]')).to_be_visible()
    assert serious_violations(page) == []
