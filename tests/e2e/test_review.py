"""Leads' invitations and review in Debian's Chromium: an invitee sets a password from the
link and lands signed in on the project, and the lead changes their role and removes them; a
lead filters the images, opens a submitted one, sends it back with a comment; the annotator
sees the comment, fixes and resubmits; the lead accepts. The new pages have no serious or
critical axe violations."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.e2e.scenario import LabelingProject, labeling_project
from tests.e2e.server import ADMIN_EMAIL, PASSWORD, Server, login
from tests.e2e.test_accessibility import serious_violations
from tests.e2e.workspace_page import WorkspacePage, interior_point, log_in, wait_paintable

NEW_PASSWORD = "violet staircase thunder"
COMMENT = "The car's wheels are labeled as road; make them car."


@contextmanager
def second_browser(browser: Browser) -> Iterator[Page]:
    """Another person's browser: its own cookies, the same settings as the page fixture."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    context.set_default_timeout(20_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def test_invitee_sets_a_password_and_lands_signed_in_on_the_project(
    server: Server, admin: httpx.Client, page: Page, browser: Browser
) -> None:
    unique = uuid.uuid4().hex[:8]
    project = admin.post("/projects", json={"name": f"Invite {unique}"}).json()["id"]
    invitee = f"new-{unique}@e2e.example.org"

    log_in(page, server.base_url, ADMIN_EMAIL)
    page.wait_for_function("!location.pathname.startsWith('/login')")
    page.goto(f"{server.base_url}/projects/{project}/manage")
    panel = page.locator('[data-panel="invitations"]')
    panel.locator('input[name="invite-email"]').fill(invitee)
    panel.locator('input[name="invite-name"]').fill("Noor")
    panel.locator("button >> text=Invite").click()
    link = panel.locator('[data-testid="invite-link"]')
    expect(link).to_be_visible()
    url = link.input_value()
    assert url.startswith(f"{server.base_url}/invite/inv_")
    expect(panel.locator(f'[data-invitation="{invitee}"]')).to_have_attribute(
        "data-state", "pending"
    )
    assert serious_violations(page) == []

    with second_browser(browser) as guest:
        guest.goto(url)
        form = guest.locator('form[data-form="invite"]')
        expect(form).to_contain_text(f"Invite {unique}")
        assert serious_violations(guest) == []
        form.locator('input[name="password"]').fill(NEW_PASSWORD)
        form.locator('input[name="password-again"]').fill(NEW_PASSWORD + "x")
        form.locator('button[type="submit"]').click()
        expect(form.locator('[role="alert"]')).to_contain_text("differ")
        form.locator('input[name="password-again"]').fill(NEW_PASSWORD)
        form.locator('button[type="submit"]').click()
        guest.wait_for_url(f"**/projects/{project}/label")
        me = guest.evaluate("fetch('/api/v1/users/me').then((r) => r.json())")
        assert me["email"] == invitee and me["name"] == "Noor"
        # The link worked once.
        guest.goto(url)
        expect(guest.locator('[data-invite="refused"]')).to_contain_text("already used")
    members = {m["email"]: m["role"] for m in admin.get(f"/projects/{project}/members").json()}
    assert members[invitee] == "annotator"
    login(server, invitee, NEW_PASSWORD).close()

    # The lead makes the new member a lead, then removes them, from the same page.
    page.reload()
    row = page.locator(f'[data-member="{invitee}"]')
    row.locator("select").select_option("lead")
    expect(page.locator(".panel .feedback >> text=is now lead")).to_be_visible()
    members = {m["email"]: m["role"] for m in admin.get(f"/projects/{project}/members").json()}
    assert members[invitee] == "lead"
    row.locator("button >> text=Remove").click()
    expect(row).to_have_count(0)
    assert invitee not in {m["email"] for m in admin.get(f"/projects/{project}/members").json()}


def _submit_by_api(server: Server, project: LabelingProject) -> tuple[int, int]:
    """The annotator labels every asked superpixel of their first task; (image, query)."""
    client = login(server, project.annotator, PASSWORD)
    try:
        task = client.post(f"/projects/{project.project_id}/tasks/next").json()
        saved = client.patch(
            f"/projects/{project.project_id}/images/{task['image_id']}/mask",
            json={
                "superpixel_map_id": task["superpixel_map_id"],
                "fills": [[s, 2] for s in task["superpixel_ids"]],
                "done": True,
            },
            headers={"If-Match": f'"{task["mask_version"]}"'},
        )
        saved.raise_for_status()
        return int(task["image_id"]), int(task["query_id"])
    finally:
        client.close()


def test_lead_sends_back_annotator_resubmits_lead_accepts(
    server: Server, admin: httpx.Client, page: Page, browser: Browser
) -> None:
    project = labeling_project(server, admin, images=2)
    image_id, query_id = _submit_by_api(server, project)
    pid = project.project_id
    page.set_viewport_size({"width": 1440, "height": 900})

    # The lead filters the images down to the one waiting for review and opens it.
    log_in(page, server.base_url, ADMIN_EMAIL)
    page.wait_for_function("!location.pathname.startsWith('/login')")
    page.goto(f"{server.base_url}/projects/{pid}/images")
    grid = page.locator('[data-testid="image-grid"]')
    expect(grid.locator("li")).to_have_count(2)
    page.select_option('select[name="state"]', "submitted")
    page.wait_for_url("**state=submitted**")
    expect(grid.locator("li")).to_have_count(1)
    expect(grid.locator("li").first).to_have_attribute("data-image", str(image_id))
    assert serious_violations(page) == []
    grid.locator("li a").first.click()
    page.wait_for_url(f"**/projects/{pid}/review/{image_id}**")
    expect(page.locator('[data-testid="review-state"]')).to_contain_text("submitted")
    expect(page.locator('[data-testid="review-stage"] canvas[data-layer="mask"]')).to_be_attached()
    assert serious_violations(page) == []

    page.click('[data-action="send-back"]')  # no comment yet: refused in the page
    expect(page.locator(".review-side .feedback")).to_contain_text("Say what to fix")
    page.fill('textarea[name="comment"]', COMMENT)
    page.click('[data-action="send-back"]')
    expect(page.locator('[data-testid="review-state"]')).to_contain_text("sent back")
    expect(page.locator('[data-testid="history"] li')).to_have_count(1)

    # The annotator gets it back first, with the comment, fixes one superpixel, resubmits.
    queried = next(q for q in project.images if q.image_id == image_id)
    with second_browser(browser) as annotator:
        log_in(annotator, server.base_url, project.annotator)
        assert wait_paintable(annotator) == query_id
        expect(annotator.locator('[data-testid="review-note"]')).to_contain_text(COMMENT)
        assert serious_violations(annotator) == []
        workspace = WorkspacePage(annotator, project.width, project.height)
        x, y, _ = interior_point(queried.pixels_of(queried.queried[0]))
        workspace.press("4")
        workspace.click(x, y)
        workspace.press("Enter")
        confirm = annotator.locator('[data-modal="confirm-submit"]')
        annotator.wait_for_timeout(300)
        if confirm.is_visible():
            workspace.press("Enter")
        annotator.wait_for_function(
            f"document.body.dataset.paintable !== '{query_id}' "
            f"|| document.querySelector('[data-empty]') !== null"
        )
    detail = admin.get(f"/projects/{pid}/review/images/{image_id}").json()
    assert detail["state"] == "submitted" and detail["mask_version"] == 2

    # The lead accepts the fixed labels.
    page.reload()
    expect(page.locator('[data-testid="review-state"]')).to_contain_text("submitted")
    page.click('[data-action="accept"]')
    expect(page.locator('[data-testid="review-state"]')).to_contain_text("accepted")
    expect(page.locator('[data-testid="history"] li')).to_have_count(2)
    history = admin.get(f"/projects/{pid}/review/images/{image_id}").json()["history"]
    assert [(h["decision"], h["comment"]) for h in history] == [
        ("sent_back", COMMENT),
        ("accepted", ""),
    ]


def test_review_keys_accept_send_back_and_move_between_images(
    server: Server, admin: httpx.Client, page: Page
) -> None:
    project = labeling_project(server, admin, images=3)
    first, _ = _submit_by_api(server, project)
    second, _ = _submit_by_api(server, project)
    pid = project.project_id
    ids = sorted(q.image_id for q in project.images)
    state = page.locator('[data-testid="review-state"]')
    log_in(page, server.base_url, ADMIN_EMAIL)
    page.wait_for_function("!location.pathname.startsWith('/login')")
    page.goto(f"{server.base_url}/projects/{pid}/review/{first}")
    expect(state).to_contain_text("submitted")
    expect(page.locator('[data-testid="review-keys"]')).to_contain_text("Send back")

    # Typing in the comment is typing: no shortcut fires.
    comment = page.locator('textarea[name="comment"]')
    comment.click()
    page.keyboard.type("pass")
    expect(comment).to_have_value("pass")
    expect(state).to_contain_text("submitted")
    # Space on a focused button presses that button only.
    toggle = page.locator(".review-side button[aria-pressed]")
    toggle.focus()
    page.keyboard.press("Space")
    expect(page.locator(".review-side button[aria-pressed]")).to_have_attribute(
        "aria-pressed", "false"
    )
    expect(state).to_contain_text("submitted")
    page.keyboard.press("a")
    expect(state).to_contain_text("accepted")
    assert admin.get(f"/projects/{pid}/review/images/{first}").json()["state"] == "accepted"

    # N / P walk the images in the browser's order (id, no filters here).
    keys = page.locator('[data-testid="review-keys"]')

    def moved_to(image_id: int) -> None:
        page.wait_for_url(f"**/projects/{pid}/review/{image_id}**")
        expect(keys).to_be_visible()  # the page is drawn and listens again

    k = ids.index(first)
    if k + 1 < len(ids):
        page.keyboard.press("n")
        moved_to(ids[k + 1])
        page.keyboard.press("p")
        moved_to(first)
    if k > 0:
        page.keyboard.press("ArrowLeft")
        moved_to(ids[k - 1])

    # S without a comment asks for one and puts the caret there; Esc leaves the field.
    page.goto(f"{server.base_url}/projects/{pid}/review/{second}")
    expect(state).to_contain_text("submitted")
    page.keyboard.press("s")
    expect(page.locator(".review-side .feedback")).to_contain_text("Say what to fix")
    expect(comment).to_be_focused()
    page.keyboard.type(COMMENT)
    page.keyboard.press("Escape")
    page.keyboard.press("s")
    expect(state).to_contain_text("sent back")
    history = admin.get(f"/projects/{pid}/review/images/{second}").json()["history"]
    assert [(h["decision"], h["comment"]) for h in history] == [("sent_back", COMMENT)]
