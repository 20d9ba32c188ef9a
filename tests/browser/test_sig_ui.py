"""A SIG case through the real UI in Chromium: referral, screening, consent, decisions,
plan, approval, a police action, then the consent withdrawn and police shut out.

Every step is taken the way a user takes it: from the side menu, the inbox and queue
rows, the task links and the case list; fields are found by their visible labels and
buttons by their names. No internal URL is typed, except once at the end, where
``per.polis`` reopens the address of a case he could read a moment ago.

The browser is switched to English on the login page, first thing: the lead translates
the new strings into Swedish after the UI work, so the English msgids are the stable
texts to assert on (the Swedish UI is covered by test_ui.py).

Screenshots of the key steps are written to /tmp/sig-*.png.
"""

from __future__ import annotations

import datetime
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.journey import shot as _shot
from tests.browser.journey import visit
from tests.conftest import COMMITTED_DB, DEMO_PASSWORD
from tests.workflows.conftest import born_years_ago, personnummer

# The live server sees committed data only; the person's data key lives in the key store.
pytestmark = COMMITTED_DB

PERSON = "Testa Provsson"
GUARDIAN = "Vera Provsson"
POLICE = "Lokalpolisområde Örebro"
SOCIAL = "Socialförvaltningen, Örebro kommun"


def shot(page, name: str) -> None:
    _shot(page, "sig", name)


def menu(page):
    return page.locator("vf-page-menu-navigation").first


def switch_to_english(page) -> None:
    # By value: the option labels are in the page's language.
    page.locator("#samverkan-language-select").select_option(value="en")
    page.locator("form.samverkan-language button[type=submit]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def log_in(page, username: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


def log_out(page) -> None:
    page.locator(".vf-page__menu-header button.vf-page__menu-toggle-button").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def as_user(page, username: str) -> None:
    log_out(page)
    log_in(page, username)


def open_task(
    page, reference: str, task: str, *, list_name: str = "Inbox", screenshot: str = ""
) -> None:
    """Open a task from the inbox (or queue): the row of the case, the task's link."""
    visit(page, menu(page).get_by_role("link", name=list_name))
    expect(page.get_by_role("heading", name=list_name)).to_be_visible()
    # The list's columns are labelled in gettext, and the case is its number and state.
    headers = page.locator("th.vf-list__table-header")
    expect(headers).to_have_text(["Task", "Case", "Created"])
    row = page.get_by_role("row").filter(has_text=reference)
    expect(row).to_have_count(1)
    expect(row.get_by_role("link", name=re.compile(rf"^{reference} · "))).to_be_visible()
    if screenshot:
        shot(page, screenshot)
    row.get_by_role("link", name=task).click()


def assign_to_me(page, reference: str) -> None:
    """On viewflow's assign page: take the task; it leaves the queue for the inbox."""
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=reference)).to_have_count(0)
    expect(menu(page).get_by_role("link", name="Inbox")).to_contain_text("1")


def task_page(page, title: str, reference: str):
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    expect(page.get_by_role("link", name=f"Open the case page of {reference}")).to_be_visible()


def step(page, name: str):
    """One of a task page's forms (they share the page)."""
    return page.locator(f"section.samverkan-step--{name}")


def banner(page, text: str) -> None:
    expect(page.locator(".samverkan-banner--success")).to_contain_text(text)


def status(page, label: str) -> None:
    expect(page.locator(".samverkan-summary .samverkan-status")).to_have_text(label)


def test_sig_case_from_referral_to_active_then_consent_withdrawn(page, problems):
    today = timezone.localdate()
    review = today + datetime.timedelta(days=90)

    # --- anna.social refers a 16-year-old ------------------------------------------------
    page.goto("/")
    switch_to_english(page)
    log_in(page, "anna.social")
    expect(menu(page).get_by_role("link", name="Case list")).to_be_visible()
    menu(page).get_by_role("link", name="New SIG referral").click()
    expect(page.get_by_role("heading", name="New SIG referral")).to_be_visible()
    page.get_by_label("Personal identity number").fill(personnummer(born_years_ago(16)))
    page.get_by_label("Name", exact=True).fill(PERSON)
    page.get_by_label("Area").select_option(label="Vivalla/Baronbackarna")
    page.get_by_label("Phone").fill("070-174 06 11")
    page.get_by_label("Reason for the referral").fill("Spends time with older offenders.")
    shot(page, "01-referral")
    page.get_by_role("button", name="Register the referral").click()

    # The receipt: the case number and what she typed, nothing from the register
    # (ADR 0012). She is on no team until the screening puts her there.
    expect(page.get_by_role("heading", name="New SIG referral", level=1)).to_be_visible()
    registered = page.locator(".samverkan-banner--success")
    expect(registered).to_have_text(re.compile(r"SIG-\d{4}-\d{4}"))
    reference = re.search(r"SIG-\d{4}-\d{4}", registered.inner_text()).group(0)
    banner(page, f"The referral {reference} is registered.")
    expect(page.locator(".vf-snackbar")).to_have_text("")  # the banner only, no toast too
    expect(page.locator(".samverkan-receipt")).to_contain_text(PERSON)
    shot(page, "02-referral-receipt")

    # The case list (side menu) does not list it: she has no access yet.
    menu(page).get_by_role("link", name="Case list").click()
    expect(page.get_by_role("heading", name="SIG cases")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=reference)).to_have_count(0)

    # --- sara.samordnare screens: from her queue, assigns, starts, accepts ----------------
    as_user(page, "sara.samordnare")
    expect(menu(page).get_by_role("link", name="Queue")).to_contain_text("1")
    open_task(page, reference, "Screen the referral", list_name="Queue", screenshot="03-queue")
    shot(page, "03-assign")
    assign_to_me(page, reference)
    open_task(page, reference, "Screen the referral")
    task_page(page, "Screen the referral", reference)
    page.get_by_role("button", name="Start screening").click()
    banner(page, "Screening started.")
    status(page, "Screening")
    screening = step(page, "screen")
    screening.get_by_label("Accept: form the team and ask for consent").check()
    screening.get_by_label("Lead social worker").select_option(label=f"Anna Social ({SOCIAL})")
    screening.get_by_label("Police contact officer").select_option(label=f"Per Polis ({POLICE})")
    screening.get_by_label("Screening note").fill("Meets the criteria.")
    shot(page, "04-screening")
    screening.get_by_role("button", name="Record the screening").click()
    banner(page, "The referral was accepted")
    status(page, "Awaiting consent")
    expect(page.get_by_role("list").filter(has_text="Per Polis")).to_contain_text(
        "Police contact officer"
    )

    # --- anna records a guardian and both consents ------------------------------------------
    as_user(page, "anna.social")
    open_task(page, reference, "Record consent")
    task_page(page, "Record consent", reference)
    guardian = step(page, "guardian")
    guardian.get_by_label("Guardian's name").fill(GUARDIAN)
    guardian.get_by_role("button", name="Register the guardian").click()
    banner(page, "The guardian is registered.")

    for giver in ("The person", "Guardian"):
        consent = step(page, "consent")
        consent.get_by_label("Given by").select_option(label=giver)
        if giver == "Guardian":
            consent.get_by_label("Guardian", exact=True).select_option(label=GUARDIAN)
        consent.get_by_label("Given", exact=True).check()
        consent.get_by_label("Form", exact=True).select_option(label="Written")
        # Social services and the police: the team's organisations are preselected.
        expect(consent.get_by_label(SOCIAL)).to_be_checked()
        expect(consent.get_by_label(POLICE)).to_be_checked()
        if giver == "Guardian":
            shot(page, "05-consent")
        consent.get_by_role("button", name="Record the consent").click()
        banner(page, "The consent is recorded.")
    consents = page.locator("table").filter(has_text="Given by")
    expect(consents.get_by_role("row")).to_have_count(3)  # header + 2
    expect(page.get_by_text("The consents needed are in place.")).to_be_visible()
    page.get_by_role("button", name="Consents complete: go to decisions").click()
    banner(page, "The consents are complete")
    status(page, "Awaiting decisions")

    # --- both agencies decide to start, each from their inbox -----------------------------
    open_task(page, reference, "Social services' decision", screenshot="05-inbox")
    task_page(page, "Social services' decision", reference)
    page.get_by_label("Start", exact=True).check()
    page.get_by_role("button", name="Record the decision").click()
    banner(page, "Your decision is recorded; the other agency decides next.")

    as_user(page, "per.polis")
    open_task(page, reference, "Police decision")
    task_page(page, "Police decision", reference)
    page.get_by_label("Start", exact=True).check()
    page.get_by_role("button", name="Record the decision").click()
    banner(page, "Both agencies decided to start: the plan is next.")
    status(page, "Planning")

    # --- anna drafts the plan: an action per agency, the plan, a review date --------------
    as_user(page, "anna.social")
    open_task(page, reference, "Draft the plan")
    task_page(page, "Draft the plan", reference)
    for kind, organisation in (
        ("Support talks", SOCIAL),
        ("Police talk", POLICE),
    ):
        action = step(page, "action")
        action.get_by_label("Action", exact=True).select_option(label=kind)
        action.get_by_label("Organisation").select_option(label=organisation)
        action.get_by_label("Status").select_option(label="Planned")
        action.get_by_label("Date").fill((today + datetime.timedelta(days=7)).isoformat())
        action.get_by_role("button", name="Add the action").click()
        banner(page, "The action is added to the plan.")
    plan = step(page, "plan")
    plan.get_by_label("Plan: goals and each agency's contribution").fill("Goal: back to school.")
    plan.get_by_label("Review date").fill(review.isoformat())
    shot(page, "06-plan")
    plan.get_by_role("button", name="Send for approval").click()
    banner(page, "The plan is sent to the coordinator for approval.")

    # --- sara approves: the case is active -----------------------------------------------------
    as_user(page, "sara.samordnare")
    open_task(page, reference, "Approve the plan", list_name="Queue")
    assign_to_me(page, reference)
    open_task(page, reference, "Approve the plan")
    task_page(page, "Approve the plan", reference)
    expect(page.get_by_text("Goal: back to school.")).to_be_visible()
    page.get_by_label("Approve the plan").check()
    page.get_by_role("button", name="Record the review").click()
    banner(page, "The plan is approved and the case is active.")
    status(page, "Active")
    expect(page.locator(".samverkan-dl")).to_contain_text(review.isoformat())
    shot(page, "07-case-active")

    # --- per.polis records an action on the case page (found through the case list) -------
    as_user(page, "per.polis")
    menu(page).get_by_role("link", name="Case list").click()
    page.get_by_role("row").filter(has_text=reference).get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", name=f"SIG case {reference}")).to_be_visible()
    status(page, "Active")
    expect(page.get_by_text(PERSON)).to_be_visible()  # police read the case under consent
    case_url = page.url
    page.get_by_text("Record an action", exact=True).click()  # the form folds out
    action = page.locator("details.samverkan-step").filter(has_text="Record an action")
    action.get_by_label("Action", exact=True).select_option(label="Police talk")
    action.get_by_label("Date").fill(today.isoformat())
    action.get_by_label("Note").fill("Talk at the station.")
    action.get_by_role("button", name="Record the action").click()
    banner(page, "The action is recorded.")
    actions = page.locator("table").filter(has_text="Visible to")
    expect(actions.get_by_role("row").filter(has_text="Talk at the station.")).to_contain_text(
        "Done"
    )
    shot(page, "08-police-action")

    # --- anna withdraws the person's own consent on the case page ---------------------------
    as_user(page, "anna.social")
    menu(page).get_by_role("link", name="Case list").click()
    page.get_by_role("link", name=reference).click()
    own = page.locator("table").filter(has_text="Given by").get_by_role("row").nth(1)
    expect(own).to_contain_text("The person")
    own.get_by_text("Withdraw", exact=True).click()  # asks for confirmation first
    shot(page, "09-withdraw-confirm")
    own.get_by_role("button", name="Confirm the withdrawal").click()
    banner(page, "The consent is withdrawn: sharing has stopped and the case is closed.")
    status(page, "Closed")
    expect(page.locator(".samverkan-tasks")).to_have_count(0)  # open tasks were cancelled
    expect(page.locator(".samverkan-timeline")).to_contain_text("Active → Closed")
    shot(page, "10-case-closed")

    # --- per.polis can no longer open the case --------------------------------------------
    as_user(page, "per.polis")
    menu(page).get_by_role("link", name="Case list").click()
    expect(page.get_by_role("heading", name="SIG cases")).to_be_visible()
    expect(page.get_by_role("link", name=reference)).to_have_count(0)
    response = page.goto(case_url)
    assert response.status == 404
    expect(page.get_by_text("Page not found").first).to_be_visible()
    expect(page.get_by_text(PERSON)).to_have_count(0)
    shot(page, "11-police-404")
    assert problems.error_document_messages == [
        f"Failed to load resource: the server responded with a status of 404 (Not Found) "
        f"({case_url})"
    ]
    problems.assert_none()


# --- Highlights: an overdue review, break-the-glass ---------------------------------------------

PURPOSE = "Browser test: preparing SIG cases"


@pytest.fixture
def sig_cases(demo):
    """An active case whose review date has passed, and a fresh referral outside per's team
    with a statutory basis for disclosure to police.

    Made through the services before the browser starts (see the ``page`` fixture).
    """
    from casework.models import LegalBasis, Organisation
    from casework.services import cases as services
    from casework.services import create_person
    from tests.workflows.factories import record_consent
    from workflows.sig.models import SigCase
    from workflows.sig.services import refer

    anna, sara, per = demo["anna.social"], demo["sara.samordnare"], demo["per.polis"]
    police = Organisation.objects.get(kind=Organisation.Kind.POLICE)
    social = anna.organisation
    today = timezone.localdate()

    def referral(name: str, years: int, serial: str) -> SigCase:
        person = create_person(
            user=anna,
            purpose=PURPOSE,
            name=name,
            personnummer=personnummer(born_years_ago(years), serial=serial),
            area="brickebacken",
        )
        return refer(user=anna, person=person, reason="Worrying contacts.", purpose=PURPOSE)

    case = referral("Överdu Granskad", 19, "512")

    def step(user, name, **kwargs):
        services.transition(user=user, case=case, name=name, purpose=PURPOSE, **kwargs)

    step(sara, "begin_screening")
    for member, role in ((anna, "lead"), (per, "police_contact")):
        services.add_member(user=sara, case=case, purpose=PURPOSE, member=member, role=role)
    step(sara, "accept")
    record_consent(anna, case, PURPOSE, [social, police])
    step(anna, "consents_given")
    for user in (anna, per):
        services.record_decision(user=user, case=case, purpose=PURPOSE, decision="start")
    step(anna, "start")
    for organisation, kind in ((social, "support_talks"), (police, "police_talk")):
        services.add_action(
            user=anna,
            case=case,
            purpose=PURPOSE,
            kind=kind,
            status="planned",
            date=today,
            organisation=organisation,
        )
    services.update_case(
        user=anna,
        case=case,
        purpose=PURPOSE,
        texts={"plan": "Goal: a job."},
        review_date=today + datetime.timedelta(days=30),
    )
    step(sara, "approve_plan", approved_by=sara)
    # Time passes: the review date is three days behind us.
    SigCase.objects.filter(pk=case.pk).update(review_date=today - datetime.timedelta(days=3))

    outside = referral("Utan Team", 17, "624")
    # Social services (the coordinator: the referral put anna on no team) record the
    # statutory basis that lets them share with police (under 21).
    services.record_legal_basis(
        user=sara,
        case=outside,
        purpose=PURPOSE,
        legal_basis=LegalBasis.objects.get(code="osl-10-18a"),
        justification="Acute risk of serious crime.",
    )
    assert case.status == "active"
    return {"overdue": case.reference, "outside": outside.reference}


def test_overdue_review_and_break_the_glass_are_impossible_to_miss(sig_cases, page, problems):
    overdue = sig_cases["overdue"]
    due = (timezone.localdate() - datetime.timedelta(days=3)).isoformat()
    page.goto("/")
    switch_to_english(page)

    # The coordinator's case list marks the overdue review; the case page says so first.
    log_in(page, "sara.samordnare")
    menu(page).get_by_role("link", name="Case list").click()
    row = page.get_by_role("row").filter(has_text=overdue)
    expect(row).to_have_class("samverkan-row--overdue")
    expect(row).to_contain_text(f"{due} overdue")
    expect(page.get_by_role("row").filter(has_text=sig_cases["outside"])).not_to_contain_text(
        "overdue"
    )
    shot(page, "20-case-list-overdue")
    row.get_by_role("link", name=overdue).click()
    expect(page.get_by_role("alert")).to_have_text(f"The review is overdue: it was due {due}.")
    shot(page, "21-case-overdue")

    # per.polis is not on the other case's team: break-the-glass opens it, loudly.
    as_user(page, "per.polis")
    menu(page).get_by_role("link", name="Case list").click()
    expect(page.get_by_role("link", name=sig_cases["outside"])).to_have_count(0)
    page.get_by_role("link", name="Break the glass").click()
    page.get_by_label("Case number").fill(sig_cases["outside"])
    page.get_by_label("Reason").fill("Acute threat reported tonight; need the contact details.")
    page.get_by_role("button", name="Open the case").click()
    expect(page.get_by_role("heading", name=f"SIG case {sig_cases['outside']}")).to_be_visible()
    alert = page.locator(".samverkan-banner--breakglass")
    expect(alert).to_contain_text("You have opened this case with break-the-glass access.")
    expect(alert).to_contain_text(re.compile(r"The access ends \d{4}-\d{2}-\d{2} \d{2}:\d{2}\."))
    expect(page.locator(".samverkan-banner--warning")).to_contain_text(
        "Break-the-glass access is open and logged"
    )
    shot(page, "22-break-the-glass")
    problems.assert_none()
