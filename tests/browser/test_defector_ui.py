"""A defector case through the real UI in Chromium, in Swedish: referral, initial check,
written consent, the police check and a LOW threat level (the local programme), intake
to an active case; then a reassessment to HIGH hands the case over to the police region
in the same request, and the local social worker keeps only the fact of the hand-over.

Every step is taken the way a user takes it: the side menu, the queue and inbox rows,
the task links, the case list; fields by their visible labels, buttons by their names.
After the hand-over the local lead and coordinator reach the case only through their
support case's link, and get the notice: not the person, not the threat.
Screenshots of the key steps are written to /tmp/defector-*.png.
"""

from __future__ import annotations

import datetime
import re

from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.journey import (
    as_user,
    banner,
    folded,
    log_in,
    menu,
    open_task,
    status,
    step,
    sv,
    take_from_queue,
)
from tests.browser.journey import shot as _shot
from tests.conftest import COMMITTED_DB
from tests.workflows.conftest import born_years_ago, personnummer

pytestmark = COMMITTED_DB

PERSON = "Avhopp Provsson"
POLICE = "Lokalpolisområde Örebro"
SOCIAL = "Socialförvaltningen, Örebro kommun"
LOW_BASIS = "Låg hotbild: inga kända hot mot personen."
HIGH_BASIS = "Hot framfört mot personen i går: hög hotnivå."


def shot(page, name: str) -> None:
    _shot(page, "defector", name)


def test_defector_case_low_to_active_then_high_hands_it_over(page, problems):
    today = timezone.localdate()
    soon = (today + datetime.timedelta(days=30)).isoformat()
    later = (today + datetime.timedelta(days=60)).isoformat()

    # --- alex.avhopp registers a referral from the side menu ---------------------------------
    page.goto("/")
    log_in(page, "alex.avhopp")
    menu(page).get_by_role("link", name=sv("New defector referral")).click()
    expect(page.get_by_role("heading", name=sv("New defector referral"), level=1)).to_be_visible()
    page.get_by_label(sv("Personal identity number")).fill(
        personnummer(born_years_ago(24), serial="731")
    )
    page.get_by_label(sv("Name"), exact=True).fill(PERSON)
    page.get_by_label(sv("Area")).select_option(label="Varberga/Oxhagen")
    page.get_by_label(sv("Referred by")).select_option(label=sv("The person"))
    page.get_by_label(sv("Reason for the referral")).fill("Vill lämna gänget, rädd för hämnd.")
    shot(page, "01-referral")
    page.get_by_role("button", name=sv("Register the referral")).click()

    # The receipt: the case number and what was typed (ADR 0012); the initial check forms
    # the team.
    expect(page.get_by_role("heading", name=sv("New defector referral"), level=1)).to_be_visible()
    registered = page.locator(".samverkan-banner--success")
    expect(registered).to_have_text(re.compile(r"DEFECTOR-\d{4}-\d{4}"))
    reference = re.search(r"DEFECTOR-\d{4}-\d{4}", registered.inner_text()).group(0)
    banner(page, sv("The referral %(reference)s is registered.", reference=reference))
    expect(page.locator(".samverkan-receipt")).to_contain_text(PERSON)

    # --- alex takes the initial check from the coordinators' queue and forms the team --------
    take_from_queue(page, reference, "Initial check of the referral")
    page.get_by_role("button", name=sv("Start the initial check")).click()
    banner(page, sv("Initial check started."))
    check = step(page, "check")
    check.get_by_label(sv("Accept: form the team and ask for consent")).check()
    check.get_by_label(sv("Lead social worker")).select_option(label=f"Anna Social ({SOCIAL})")
    check.get_by_label(sv("Police contact officer")).select_option(label=f"Per Polis ({POLICE})")
    check.get_by_label(sv("Initial check"), exact=True).fill("Motiverad; hot från gänget.")
    shot(page, "02-initial-check")
    check.get_by_role("button", name=sv("Record the initial check")).click()
    banner(page, sv("Accepted; the lead social worker asks for written consent."))
    case_url = page.url
    status(page, sv("Awaiting consent"))

    # --- anna.social (the lead) records the person's written consent ------------------------
    as_user(page, "anna.social")
    open_task(page, reference, "Record written consent")
    consent = step(page, "consent")
    consent.get_by_label(sv("Given by")).select_option(label=sv("The person"))
    consent.get_by_label(sv("Given"), exact=True).check()
    expect(consent.get_by_label(sv("Form"), exact=True)).to_have_value("written")
    # Every agency involved (the owner and the team's organisations) is preselected.
    expect(consent.get_by_label(SOCIAL)).to_be_checked()
    expect(consent.get_by_label(POLICE)).to_be_checked()
    consent.get_by_role("button", name=sv("Record the consent")).click()
    banner(page, sv("The consent is recorded."))
    step(page, "complete").get_by_role(
        "button", name=sv("Consent complete: joint assessment")
    ).click()
    banner(page, sv("Consent complete: the police check and the joint assessment follow."))
    status(page, sv("Joint assessment"))

    # --- per.polis: the police check, then a LOW threat level → the local programme ---------
    as_user(page, "per.polis")
    open_task(page, reference, "Police check and threat assessment")
    police_check = step(page, "police_check")
    police_check.get_by_label(sv("Result of the police check")).fill("Inga nya ärenden.")
    police_check.get_by_role("button", name=sv("Record the police check")).click()
    banner(page, sv("The police check is recorded."))
    assess = step(page, "assess")
    assess.get_by_label(sv("Low"), exact=True).check()
    assess.get_by_label(sv("Basis of the assessment")).fill(LOW_BASIS)
    assess.get_by_label(sv("Valid until")).fill(later)
    assess.get_by_label(sv("Next reassessment")).fill(soon)
    shot(page, "03-assessment")
    assess.get_by_role("button", name=sv("Record the assessment and route the case")).click()
    banner(page, sv("The threat assessment is recorded and the case routed."))
    status(page, sv("Local intake"))
    expect(page.locator(".samverkan-threat")).to_contain_text(sv("Low"))

    # --- alex: support decision, accepted conditions, agreement, start ----------------------
    as_user(page, "alex.avhopp")
    take_from_queue(page, reference, "Local intake and agreement")
    support = step(page, "support")
    support.get_by_label(sv("Start"), exact=True).check()
    support.get_by_role("button", name=sv("Record the decision")).click()
    banner(page, sv("The support decision is recorded."))
    conditions = step(page, "conditions")
    for label in ("No crime", "Drug-free", "Accepts drug tests"):
        conditions.get_by_label(sv(label)).check()
    conditions.get_by_role("button", name=sv("Record the accepted conditions")).click()
    banner(page, sv("The accepted conditions are recorded."))
    step(page, "sign").get_by_role("button", name=sv("Agreement signed")).click()
    banner(page, sv("The agreement is signed."))
    activate = step(page, "activate")
    activate.get_by_label(sv("Review date")).fill(later)
    activate.get_by_role("button", name=sv("Start the programme")).click()
    banner(page, sv("The programme has started."))
    status(page, sv("Active"))
    shot(page, "04-active")

    # --- per.polis reassesses: HIGH hands the case over in the same request -----------------
    as_user(page, "per.polis")
    menu(page).get_by_role("link", name=sv("Defector cases")).click()
    page.get_by_role("row").filter(has_text=reference).get_by_role("link", name=reference).click()
    status(page, sv("Active"))
    reassess = folded(page, sv("Reassess the threat"))
    reassess.get_by_label(sv("High"), exact=True).check()
    reassess.get_by_label(sv("Basis of the assessment")).fill(HIGH_BASIS)
    reassess.get_by_label(sv("Valid until")).fill(later)
    reassess.get_by_label(sv("Next reassessment")).fill(soon)
    reassess.get_by_role("button", name=sv("Record the reassessment")).click()
    banner(page, sv("The reassessment is in force and the case is routed by it."))
    status(page, sv("Handed over: police region"))
    expect(page.locator(".samverkan-threat")).to_contain_text(sv("High"))
    assessments = page.locator("section[aria-labelledby=samverkan-threat] table")
    expect(assessments.get_by_role("row")).to_have_count(3)  # header, HIGH, the LOW superseded
    expect(assessments).to_contain_text(sv("Superseded"))
    # The local tasks went with the hand-over; social services keep a linked support case.
    expect(page.locator(".samverkan-tasks")).to_have_count(0)
    support_link = page.locator(".samverkan-links li").filter(has_text=sv("Support case"))
    expect(support_link).to_have_count(1)
    support_reference = support_link.get_by_role("link").inner_text()
    shot(page, "05-handed-over")

    # --- anna.social, the local lead: the support case, and of the case only the hand-over ---
    as_user(page, "anna.social")
    menu(page).get_by_role("link", name=sv("Defector cases")).click()
    expect(page.get_by_role("link", name=reference)).to_have_count(0)  # not hers to open
    page.get_by_role("link", name=support_reference).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(support_reference)
    card = page.locator(".samverkan-card")
    expect(card).to_contain_text(PERSON)  # social services' support goes on
    for hidden in (LOW_BASIS, HIGH_BASIS, sv("Threat level")):
        expect(card).not_to_contain_text(hidden)
    shot(page, "06-support-case")
    # The support case came from the handed-over case: its link leads to the notice.
    page.locator(".samverkan-links").get_by_role("link", name=reference).click()
    assert page.url == case_url
    expect(page.get_by_role("heading", name=f"{sv('Defector case')} {reference}")).to_be_visible()
    notice = page.locator("#samverkan-handed-over")
    expect(notice).to_contain_text(
        sv("This case left the local programme on %(date)s.", date=today.isoformat())
    )
    expect(notice).to_contain_text(sv("Its content is no longer available to the local programme."))
    for hidden in (PERSON, LOW_BASIS, HIGH_BASIS, "Vill lämna gänget", sv("Threat level")):
        expect(card).not_to_contain_text(hidden)
    expect(page.locator("form.samverkan-form")).to_have_count(0)
    expect(page.get_by_role("link", name=support_reference)).to_be_visible()
    shot(page, "07-local-notice")

    # --- alex.avhopp, the local coordinator who ran the intake: the notice only, too --------
    as_user(page, "alex.avhopp")
    menu(page).get_by_role("link", name=sv("Defector cases")).click()
    expect(page.get_by_role("link", name=reference)).to_have_count(0)
    page.get_by_role("link", name=support_reference).click()
    page.locator(".samverkan-links").get_by_role("link", name=reference).click()
    expect(notice).to_be_visible()
    for hidden in (PERSON, LOW_BASIS, HIGH_BASIS, sv("Threat level")):
        expect(card).not_to_contain_text(hidden)
    problems.assert_none()
