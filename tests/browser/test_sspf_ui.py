"""An SSPF case through the real UI in Chromium, in Swedish: a school raises a concern,
the coordinator assesses it (risk assessment, team), records the guardian's written
consent and the 15-year-old's own, the mapping conversation, and the network meeting
adopts the commitment plan; a leisure member records an action; the school sees the
case, but not the social-services and police parts; a school user outside the case
cannot open it; and the operational group's anonymised discussion refuses a
personnummer with a Swedish form error.

Screenshots of the key steps are written to /tmp/sspf-*.png.
"""

from __future__ import annotations

import datetime
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.journey import (
    as_user,
    banner,
    folded,
    log_in,
    menu,
    status,
    step,
    sv,
    take_from_queue,
)
from tests.browser.journey import shot as _shot
from tests.conftest import COMMITTED_DB
from tests.workflows.conftest import born_years_ago, personnummer

pytestmark = COMMITTED_DB

PERSON = "Elev Provsson"
GUARDIAN = "Vårdnad Provsson"
SOCIAL = "Socialförvaltningen, Örebro kommun"
SCHOOL = "Vivallaskolan"
LEISURE = "Fritidsgården Vivalla"
CONCERN = "Hög frånvaro, setts med äldre ungdomar på kvällarna."
RISK = "Skolk och äldre kamrater."
MAPPING = "Familjen vill ha stöd; pappan oroad över kvällarna."
SOCIAL_NOTE = "Samtal med familjen om hemsituationen."
GOALS = "Mål: full närvaro till jul."
SSPF_MENU = re.compile(r"SSPF$")  # the side menu's SSPF page (its icon, then the name)


def shot(page, name: str) -> None:
    _shot(page, "sspf", name)


def my_cases(page):
    """The SSPF page's first table: the cases this user may open ("My SSPF cases")."""
    expect(page.get_by_role("heading", name=sv("My SSPF cases"))).to_be_visible()
    return page.locator("table.samverkan-table").first


@pytest.fixture
def other_school_user(demo):
    """A school user at another school, on no SSPF case (made before the browser starts)."""
    from django.contrib.auth.models import Group

    from casework import roles
    from casework.models import Organisation, User
    from tests.conftest import DEMO_PASSWORD

    user = User.objects.create_user(
        username="nils.skola",
        password=DEMO_PASSWORD,
        first_name="Nils",
        last_name="Skola",
        organisation=Organisation.objects.get(name="Navets skola"),
    )
    user.groups.set([Group.objects.get(name=roles.SCHOOL)])
    return user


def test_sspf_concern_to_plan_school_sees_its_part_and_discussion_refuses_pnr(
    other_school_user, page, problems
):
    today = timezone.localdate()
    follow_up = (today + datetime.timedelta(days=60)).isoformat()

    # --- lisa.skola raises a concern about a 15-year-old -------------------------------------
    page.goto("/")
    log_in(page, "lisa.skola")
    menu(page).get_by_role("link", name=SSPF_MENU).click()
    page.get_by_role("link", name=sv("Raise a new concern")).click()
    expect(page.get_by_role("heading", name=sv("New SSPF concern"), level=1)).to_be_visible()
    page.get_by_label(sv("Personal identity number")).fill(
        personnummer(born_years_ago(15), serial="846")
    )
    page.get_by_label(sv("Name"), exact=True).fill(PERSON)
    page.get_by_label(sv("Area")).select_option(label="Vivalla/Baronbackarna")
    page.get_by_label(sv("The concern")).fill(CONCERN)
    shot(page, "01-concern")
    page.get_by_role("button", name=sv("Raise the concern")).click()
    # The receipt (ADR 0012): the number and what she typed; she is on no team yet.
    expect(page.locator(".samverkan-receipt")).to_contain_text(PERSON)
    registered = page.locator(".samverkan-banner--success")
    expect(registered).to_have_text(re.compile(r"SSPF-\d{4}-\d{4}"))
    reference = re.search(r"SSPF-\d{4}-\d{4}", registered.inner_text()).group(0)
    expect(registered).to_have_text(
        sv(
            "The concern %(reference)s is registered; the SSPF coordinator assesses it.",
            reference=reference,
        )
    )
    menu(page).get_by_role("link", name=SSPF_MENU).click()
    raised = page.get_by_role("row").filter(has_text=reference)
    expect(raised).to_contain_text(sv("Concern raised"))
    expect(raised.get_by_role("link")).to_have_count(0)

    # --- sara.samordnare assesses: risk assessment, the team, accept -------------------------
    as_user(page, "sara.samordnare")
    take_from_queue(page, reference, "Assess the concern")
    page.get_by_role("button", name=sv("Start the assessment")).click()
    banner(page, sv("Assessment started."))
    risk = step(page, "risk")
    risk.get_by_label(sv("Moderate")).check()
    risk.get_by_label(sv("Risk factors")).fill(RISK)
    risk.get_by_label(sv("Protective factors")).fill("Engagerad förälder.")
    risk.get_by_role("button", name=sv("Record the risk assessment")).click()
    banner(page, sv("The risk assessment is recorded."))
    for person, role in (
        (f"Lisa Skola ({SCHOOL})", "School"),
        (f"Fredrik Fritid ({LEISURE})", "Leisure"),
    ):
        member = step(page, "member")
        member.get_by_label(sv("Team member")).select_option(label=person)
        member.get_by_label(sv("Role")).select_option(label=sv(role))
        member.get_by_role("button", name=sv("Add to the team")).click()
        banner(page, sv("The team member is added."))
    outcome = step(page, "outcome")
    outcome.get_by_label(sv("Accept: ask for consent")).check()
    shot(page, "02-assessment")
    outcome.get_by_role("button", name=sv("Record the outcome")).click()
    banner(page, sv("The concern is accepted: ask the guardians for consent."))
    status(page, sv("Awaiting consent"))

    # --- the guardian's written consent and the 15-year-old's own ---------------------------
    take_from_queue(page, reference, "Record consent")
    guardian = step(page, "guardian")
    guardian.get_by_label(sv("Guardian's name")).fill(GUARDIAN)
    guardian.get_by_role("button", name=sv("Register the guardian")).click()
    banner(page, sv("The guardian is registered."))
    for giver in ("Guardian", "The person"):
        consent = step(page, "consent")
        consent.get_by_label(sv("Given by")).select_option(label=sv(giver))
        if giver == "Guardian":
            consent.get_by_label(sv("Guardian"), exact=True).select_option(label=GUARDIAN)
        consent.get_by_label(sv("Given"), exact=True).check()
        consent.get_by_label(sv("Form"), exact=True).select_option(label=sv("Written"))
        # The owner and the team's organisations are preselected; not the police.
        for organisation in (SOCIAL, SCHOOL, LEISURE):
            expect(consent.get_by_label(organisation)).to_be_checked()
        expect(consent.get_by_label("Lokalpolisområde Örebro")).not_to_be_checked()
        consent.get_by_role("button", name=sv("Record the consent")).click()
        banner(page, sv("The consent is recorded."))
    step(page, "complete").get_by_role(
        "button", name=sv("Consents complete: to the mapping conversation")
    ).click()
    banner(page, sv("The consents are complete: hold the mapping conversation."))
    status(page, sv("Mapping conversation"))

    # --- the mapping conversation, then the network meeting adopts the plan ------------------
    take_from_queue(page, reference, "Mapping conversation")
    mapping = step(page, "mapping")
    mapping.get_by_label(sv("Held on")).fill(today.isoformat())
    mapping.get_by_label(sv("The family's view, needs and strengths")).fill(MAPPING)
    mapping.get_by_role("button", name=sv("Record the mapping conversation")).click()
    banner(page, sv("The mapping conversation is recorded: the network meeting is next."))

    take_from_queue(page, reference, "Network meeting: the commitment plan")
    for kind, organisation, note in (
        ("School support", SCHOOL, "Mentorssamtal varje vecka."),
        ("Support talks", SOCIAL, SOCIAL_NOTE),
    ):
        action = step(page, "action")
        action.get_by_label(sv("Action"), exact=True).select_option(label=sv(kind))
        action.get_by_label(sv("Organisation")).select_option(label=organisation)
        action.get_by_label(sv("Date")).fill((today + datetime.timedelta(days=7)).isoformat())
        action.get_by_label(sv("Note")).fill(note)
        action.get_by_role("button", name=sv("Add the action")).click()
        banner(page, sv("The action is added to the plan."))
    plan = step(page, "plan")
    plan.get_by_label(sv("Goals of the commitment plan")).fill(GOALS)
    plan.get_by_label(sv("Follow-up date")).fill(follow_up)
    shot(page, "03-network-meeting")
    plan.get_by_role("button", name=sv("Adopt the commitment plan")).click()
    banner(page, sv("The commitment plan is adopted."))
    status(page, sv("Plan active"))
    case_url = page.url

    # --- fredrik.fritid, a member, records the leisure centre's action -----------------------
    as_user(page, "fredrik.fritid")
    menu(page).get_by_role("link", name=SSPF_MENU).click()
    my_cases(page).get_by_role("link", name=reference).click()
    status(page, sv("Plan active"))
    action = folded(page, sv("Record an action"))
    action.get_by_label(sv("Action"), exact=True).select_option(label=sv("Leisure activity"))
    action.get_by_label(sv("Date")).fill(today.isoformat())
    action.get_by_label(sv("Note")).fill("Fotboll på tisdagar.")
    action.get_by_role("button", name=sv("Record the action")).click()
    banner(page, sv("The action is recorded."))

    # --- lisa.skola sees the case: the plan and the school's and leisure's actions only ------
    as_user(page, "lisa.skola")
    menu(page).get_by_role("link", name=SSPF_MENU).click()
    my_cases(page).get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", name=f"{sv('SSPF case')} {reference}")).to_be_visible()
    card = page.locator(".samverkan-card")
    expect(card).to_contain_text(PERSON)
    expect(card).to_contain_text(GOALS)
    actions = page.locator("table").filter(has_text=sv("Visible to"))
    expect(actions).to_contain_text("Mentorssamtal varje vecka.")
    expect(actions).to_contain_text("Fotboll på tisdagar.")
    for hidden in (CONCERN, RISK, MAPPING, SOCIAL_NOTE, GUARDIAN, sv("The police's part")):
        expect(card).not_to_contain_text(hidden)
    shot(page, "04-school-view")

    # --- the operational group: an anonymised discussion with a personnummer is refused ------
    as_user(page, "sara.samordnare")
    menu(page).get_by_role("link", name=SSPF_MENU).click()
    page.get_by_role("link", name=sv("Operational group meetings")).click()
    new = page.locator("form.samverkan-form")
    new.get_by_label(sv("Date")).fill(today.isoformat())
    for organisation in (SOCIAL, SCHOOL, LEISURE):
        new.get_by_label(organisation).check()
    new.get_by_role("button", name=sv("Create the meeting")).click()
    banner(page, sv("The meeting is created."))
    discussion = page.locator("form.samverkan-form").filter(
        has=page.locator("input[name=_action][value=discussion]")
    )
    discussion.get_by_label(sv("Date")).fill(today.isoformat())
    discussion.get_by_label(sv("Raised by")).select_option(label=SCHOOL)
    discussion.get_by_label(sv("Topic")).select_option(label=sv("School absence"))
    summary = sv("The situation, without names or personal identity numbers")
    discussion.get_by_label(summary).fill("Eleven 20100315-1234 är borta varje fredag.")
    discussion.get_by_role("button", name=sv("Record the discussion")).click()
    refused = page.locator("form.samverkan-form").filter(
        has=page.locator("input[name=_action][value=discussion]")
    )
    expect(refused.locator(".errorlist")).to_have_text(
        sv(
            "Remove what looks like a personal identity number: an anonymised "
            "discussion holds no personal data."
        )
    )
    expect(page.locator("li").filter(has_text="20100315")).to_have_count(0)  # not recorded
    shot(page, "05-discussion-refused")
    refused.get_by_label(summary).fill("En elev i årskurs 8 är borta varje fredag.")
    refused.get_by_role("button", name=sv("Record the discussion")).click()
    banner(page, sv("The anonymised discussion is recorded."))
    expect(page.locator(".samverkan-card")).to_contain_text("En elev i årskurs 8")

    # --- a school user outside the case cannot open it --------------------------------------
    as_user(page, "nils.skola")
    menu(page).get_by_role("link", name=SSPF_MENU).click()
    expect(page.get_by_role("link", name=reference)).to_have_count(0)
    response = page.goto(case_url)
    assert response.status == 404
    expect(page.locator("body")).not_to_contain_text(PERSON)

    assert problems.error_document_messages == [
        f"Failed to load resource: the server responded with a status of 404 (Not Found) "
        f"({case_url})"
    ]
    problems.assert_none()
