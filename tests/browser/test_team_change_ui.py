"""Changing the lead social worker of an active SIG case in Chromium (issue 17; ADR 0026):
the coordinator replaces the lead on the case's team page, with a reason; the new lead finds
the open task in her inbox and opens it; the old lead's next request for the case gets 404.

Taken in the Swedish UI (texts by their msgids through ``journey.sv``). Screenshots:
/tmp/team-*.png.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.journey import as_user, banner, log_in, open_task, shot, sv
from tests.conftest import COMMITTED_DB, DEMO_PASSWORD
from tests.workflows.conftest import colleague
from tests.workflows.sig.factories import FlowDriver

pytestmark = COMMITTED_DB

TASK = "Follow up the case"


@pytest.fixture
def active_case(demo):
    """An active SIG case at its review date: the lead's (anna.social's) follow-up task is
    open. ebba.social, a colleague of anna's office, can sign in."""
    flow_case = FlowDriver(demo).build("follow_up")
    ebba = colleague(demo, "anna.social", "ebba.social")
    ebba.first_name, ebba.last_name = "Ebba", "Ersättare"
    ebba.set_password(DEMO_PASSWORD)
    ebba.save()
    return flow_case.case


def test_coordinator_replaces_the_lead_and_the_task_follows(
    active_case, page, live_server, problems
):
    case_path = reverse("arenden:case", kwargs={"case_id": active_case.pk})
    page.goto("/")
    log_in(page, "sara.samordnare")
    page.goto(case_path)
    page.get_by_role("link", name=sv("Change the team")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(sv("The case's team"))
    replace = page.locator("details.samverkan-step").filter(
        has=page.locator(
            "summary", has_text=sv("Replace the lead social worker or the police contact officer")
        )
    )
    replace.get_by_label(sv("Role")).select_option(label=sv("Lead social worker"))
    replace.get_by_label(sv("New holder")).select_option(
        label="Ebba Ersättare (Socialförvaltningen, Örebro kommun)"
    )
    replace.get_by_label(sv("Reason")).fill("Anna går över till en annan enhet.")
    shot(page, "team", "replace")
    replace.get_by_role("button", name=sv("Replace")).click()
    banner(page, sv("The role has a new holder; the open tasks followed."))
    expect(page.locator("table[data-team]")).to_contain_text("Ebba Ersättare")
    shot(page, "team", "replaced")

    as_user(page, "ebba.social")
    open_task(page, active_case.reference, TASK)
    expect(page.get_by_role("heading", name=sv(TASK), level=1)).to_be_visible()
    shot(page, "team", "new-lead-task")

    as_user(page, "anna.social")
    response = page.goto(case_path)
    assert response.status == 404
    shot(page, "team", "old-lead-404")
    problems.assert_none()
