"""A GVI custom notification through the real UI in Chromium, in Swedish: police record
an incident; the coordinator requests a notification to a group member; the police
officer's legal assessment, the coordinator's approval of the message, the visit
scheduled with a non-police messenger, the delivery where the member accepts the offer
of help — which opens a SIG referral, linked: the link shows on the member's page and
on the SIG case page, and the referral waits in the coordinators' screening queue. The
accepted offer also reaches social services: the named GVI participant ``anna.social``
finds the referral (its SIG number) in her queue, takes the task into her inbox, takes
the referral up — which puts her on the SIG case's team as a social worker — and lands on
the SIG case page, which she may now open.

The mapped group and its selected member are made through the services first (the
group pages have their own tests); everything after is taken in the browser.
Screenshots of the key steps are written to /tmp/gvi-*.png.
"""

from __future__ import annotations

import datetime
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.journey import (
    as_user,
    assign_and_open,
    banner,
    folded,
    log_in,
    menu,
    open_task,
    sv,
    take_from_queue,
)
from tests.browser.journey import shot as _shot
from tests.conftest import COMMITTED_DB
from tests.workflows.conftest import born_years_ago, personnummer
from tests.workflows.gvi.factories import name_participant

pytestmark = COMMITTED_DB

MEMBER = "Medlem Provsson"
CALLED = "Kallad Provsson"
PURPOSE = "Browser test: preparing a GVI group"
ASSESSMENT = "Inga hinder: inga pågående utredningar mot medlemmen."
MESSAGE = "Våldet måste upphöra; vi erbjuder stöd att lämna."
OFFER = "Stödsamtal och hjälp med jobb via SIG."


def shot(page, name: str) -> None:
    _shot(page, "gvi", name)


@pytest.fixture
def gvi_member(demo):
    """A mapped group with a selected member aged 19 (within SIG's age range)."""
    from casework.services import create_person
    from workflows.gvi import services

    sara = demo["sara.samordnare"]
    # anna.social is a named GVI participant (``seed_demo`` names her only with its GVI
    # demo data, which the tests leave out).
    name_participant(demo["anna.social"])
    group = services.create_group(
        user=sara,
        purpose=PURPOSE,
        name="Provgänget",
        notes=None,
        area="vivalla_baronbackarna",
        size_band=services.gvi.SizeBand.values[0],
    )
    person = create_person(
        user=sara,
        purpose=PURPOSE,
        name=MEMBER,
        personnummer=personnummer(born_years_ago(19), serial="957"),
        area="vivalla_baronbackarna",
    )
    member = services.add_member(user=sara, purpose=PURPOSE, group=group, person=person)
    called = create_person(
        user=sara,
        purpose=PURPOSE,
        name=CALLED,
        personnummer=personnummer(born_years_ago(20), serial="968"),
        area="vivalla_baronbackarna",
    )
    called = services.add_member(user=sara, purpose=PURPOSE, group=group, person=called)
    services.transition(user=sara, obj=group, name="map", purpose=PURPOSE)
    for selected in (member, called):
        services.transition(user=sara, obj=selected, name="select", purpose=PURPOSE)
    return group.reference


def test_custom_notification_delivered_offer_accepted_opens_linked_sig_referral(
    gvi_member, page, problems
):
    group = gvi_member
    today = timezone.localdate()
    visit = (today + datetime.timedelta(days=2)).isoformat() + "T18:30"

    # --- per.polis records a shooting linked to the group -----------------------------------
    page.goto("/")
    log_in(page, "per.polis")
    menu(page).get_by_role("link", name=sv("GVI")).click()
    expect(page.get_by_role("heading", name=sv("GVI overview"))).to_be_visible()
    page.get_by_role("link", name=sv("Record an incident")).click()
    page.get_by_label(sv("Date")).fill(today.isoformat())
    page.get_by_label(sv("Area")).select_option(label="Vivalla/Baronbackarna")
    page.get_by_label(sv("Type")).select_option(label=sv("Shooting"))
    page.get_by_label(group, exact=True).check()
    shot(page, "01-incident")
    page.get_by_role("button", name=sv("Record the incident")).click()
    banner(page, sv("The incident is recorded."))
    incidents = page.locator("ul").filter(has_text=sv("Shooting"))
    expect(incidents.first).to_contain_text(group)

    # --- sara.samordnare plans a call-in, invites a member, sets the speakers, holds it -----
    as_user(page, "sara.samordnare")
    menu(page).get_by_role("link", name=sv("GVI")).click()
    page.get_by_role("link", name=sv("Plan a call-in")).click()
    page.get_by_label(sv("Date")).fill(today.isoformat())
    page.get_by_role("button", name=sv("Plan the call-in")).click()
    banner(page, sv("The call-in is planned."))
    call_in = re.search(r"GVI-C-\d{4}-\d{4}", page.locator("h1").inner_text()).group(0)
    page.get_by_role("link", name=sv("Plan and hold the call-in")).click()
    assign_and_open(page, call_in, "Plan and hold the call-in")
    attendee = page.locator("section.samverkan-step--attendee")
    attendee.get_by_label(sv("Group member")).select_option(label=f"{CALLED} ({group})")
    attendee.get_by_role("button", name=sv("Add the attendee")).click()
    banner(page, sv("Saved."))
    page.get_by_role("button", name=sv("Attendees selected")).click()
    page.get_by_role("button", name=sv("Invitations sent")).click()
    for role, speaker in (
        ("Moral / community voice", "Imam i Vivalla"),
        ("Law enforcement", "Åklagare"),
        ("Offer of help", "Socialsekreterare"),
    ):
        speakers = page.locator("section.samverkan-step--speaker")
        speakers.get_by_label(sv("Speaker role")).select_option(label=sv(role))
        speakers.get_by_label(sv("Speaker"), exact=True).fill(speaker)
        speakers.get_by_role("button", name=sv("Set the speaker")).click()
        banner(page, sv("Saved."))
    attendance = page.locator("section.samverkan-step--attendance")
    attendance.get_by_label(sv("Attended"), exact=True).check()
    attendance.get_by_role("button", name=sv("Record the attendance")).click()
    banner(page, sv("Saved."))
    shot(page, "02-call-in")
    page.get_by_role("button", name=sv("The call-in is held")).click()
    banner(page, sv("The step is done."))
    expect(page.locator(".samverkan-status")).to_have_text(sv("Held"))

    # --- sara requests a custom notification from the other member's page --------------------
    menu(page).get_by_role("link", name=sv("GVI")).click()
    page.get_by_role("row").filter(has_text=group).get_by_role("link", name=group).click()
    page.get_by_role("link", name=MEMBER).click()
    expect(page.get_by_role("heading", name=MEMBER, level=1)).to_be_visible()
    member_url = page.url
    notify = folded(page, sv("Request a custom notification"))
    notify.get_by_label(sv("Police officer")).select_option(label="Per Polis")
    notify.get_by_role("button", name=sv("Request")).click()
    banner(page, sv("The custom notification is requested."))
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"GVI-N-\d{4}-\d{4}"))
    notification = re.search(r"GVI-N-\d{4}-\d{4}", heading.inner_text()).group(0)

    # --- per.polis: the legal assessment comes first -----------------------------------------
    as_user(page, "per.polis")
    open_task(page, notification, "Legal assessment")
    assess = page.locator("section.samverkan-step--assess")
    assess.get_by_label(sv("Supports a custom notification")).check()
    assess.get_by_label(sv("Legal assessment")).fill(ASSESSMENT)
    assess.get_by_role("button", name=sv("Record the legal assessment")).click()
    banner(page, sv("The step is done."))

    # --- sara approves the message (the coordinators' queue) -------------------------------
    as_user(page, "sara.samordnare")
    take_from_queue(page, notification, "Approve the message")
    expect(page.get_by_text(ASSESSMENT)).to_be_visible()
    approve = page.locator("section.samverkan-step--approve")
    approve.get_by_label(sv("The message")).fill(MESSAGE)
    approve.get_by_role("button", name=sv("Approve the message")).click()
    banner(page, sv("The step is done."))

    # --- per.polis: a non-police messenger, the visit, the delivery: the offer accepted -----
    as_user(page, "per.polis")
    open_task(page, notification, "Schedule and deliver")
    messenger = page.locator("section.samverkan-step--messenger")
    messenger.get_by_label(sv("Messenger")).select_option(label=sv("Social services"))
    messenger.get_by_label(sv("Who")).fill("Socialsekreterare från fältgruppen")
    messenger.get_by_role("button", name=sv("Add the messenger")).click()
    banner(page, sv("Saved."))
    schedule = page.locator("section.samverkan-step--schedule")
    schedule.get_by_label(sv("Visit (date and time)")).fill(visit)
    schedule.get_by_role("button", name=sv("Schedule the visit")).click()
    banner(page, sv("The visit is scheduled."))
    deliver = page.locator("section.samverkan-step--deliver")
    deliver.get_by_label(sv("Offer of help"), exact=True).fill(OFFER)
    deliver.get_by_label(sv("Accepted the offer of help"), exact=True).check()
    deliver.get_by_label(sv("Refer to (if accepted)")).select_option(label="SIG")
    deliver.get_by_label(sv("Reason for the referral (if accepted)")).fill("Vill ha stöd.")
    shot(page, "03-deliver")
    deliver.get_by_role("button", name=sv("Record the delivery")).click()
    banner(page, sv("The step is done."))
    expect(page.locator(".samverkan-status")).to_have_text(sv("Delivered"))
    expect(page.locator(".samverkan-dl")).to_contain_text(sv("Accepted the offer of help"))

    # --- the link, on the member's page and on the SIG case page ---------------------------
    as_user(page, "sara.samordnare")
    page.goto(member_url)
    expect(page.locator(".samverkan-status")).to_have_text(sv("Offer accepted"))
    referral = page.locator(".samverkan-dl dd").filter(has_text="(SIG)").get_by_role("link")
    expect(referral).to_have_text(re.compile(r"^SIG-\d{4}-\d{4}$"))
    sig_reference = referral.inner_text()
    shot(page, "04-member-linked")
    referral.click()
    expect(page.get_by_role("heading", name=f"{sv('SIG case')} {sig_reference}")).to_be_visible()
    expect(page.locator(".samverkan-summary .samverkan-status")).to_have_text(sv("Referred"))
    expect(page.locator(".samverkan-summary")).to_contain_text(MEMBER)
    source = page.get_by_role("link", name=sv("GVI group member: offer of help accepted"))
    expect(source).to_be_visible()
    shot(page, "05-sig-case-linked")
    source.click()
    expect(page.get_by_role("heading", name=MEMBER, level=1)).to_be_visible()
    assert page.url == member_url

    # The referral waits in the coordinators' screening queue.
    page.go_back()
    menu(page).get_by_role("link", name=sv("Queue")).click()
    row = page.get_by_role("row").filter(has_text=sig_reference)
    expect(row.get_by_role("link", name=sv("Screen the referral"))).to_be_visible()

    # --- anna.social (social services): the accepted offer's referral reaches her -----------
    page.wait_for_load_state("networkidle")
    as_user(page, "anna.social")
    take_up = "Offer of help accepted: take up the referral"
    take_from_queue(page, sig_reference, take_up)
    details = page.locator(".samverkan-referral")
    expect(details).to_contain_text(sig_reference)
    expect(details).to_contain_text(MEMBER)
    expect(details).to_contain_text(group)
    shot(page, "06-referral-task")
    page.get_by_role("button", name=sv("Take up the referral")).click()
    banner(
        page,
        sv("You are on the team of %(reference)s as a social worker.", reference=sig_reference),
    )
    expect(page.get_by_role("heading", name=f"{sv('SIG case')} {sig_reference}")).to_be_visible()
    expect(page.locator(".samverkan-summary")).to_contain_text(MEMBER)
    shot(page, "07-sig-case-taken-up")
    # The task is done: no longer in her inbox.
    page.wait_for_load_state("networkidle")
    menu(page).get_by_role("link", name=sv("Inbox")).click()
    expect(page.get_by_role("heading", name=sv("Inbox"))).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=sig_reference)).to_have_count(0)
    problems.assert_none()
