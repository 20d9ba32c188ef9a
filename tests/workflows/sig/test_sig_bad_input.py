"""Bad input on every SIG form: Swedish form errors (or a 4xx), never a 500, nothing partial.

Each form gets its missing fields, wrong personnummer, illegal past or future
dates, text past its limit (10,000 characters and far beyond), NUL characters,
values outside its choices and stale or forged hidden fields. After every
refused post the rows of the case — and of persons, processes, tasks and data
keys — are as they were, and no creating or changing access-log event was
written. HTML and script in free text are stored as text and shown escaped.
"""

from __future__ import annotations

import datetime
import html
import uuid
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone, translation
from django.utils.functional import Promise
from viewflow.workflow.models import Task

from audit.models import AccessEvent
from casework.models import (
    Action,
    BreakGlassAccess,
    Case,
    CaseDecision,
    CaseEvent,
    CaseLegalBasis,
    CaseMembership,
    Consent,
    DataKey,
    Guardian,
    LegalBasis,
    Person,
)
from tests.workflows.conftest import BOTH_DATABASES, born_years_ago, personnummer
from tests.workflows.sig.factories import PERSON_NAME, FlowDriver, record_full_consent, sig_case
from workflows.sig.flow import SigFlow
from workflows.sig.models import SigCase, SigProcess, Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

LONG = "x" * 10_001  # one past the longest text field
HUGE = "y" * 100_000
SCRIPT = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
COMPILED = (Path(__file__).resolve().parents[3] / "locale/sv/LC_MESSAGES/django.mo").exists()


@pytest.fixture
def day():
    """``day(n)``: the date ``n`` days from today as a form posts it. Today is taken as the
    test starts, not at import (a run across midnight in Stockholm compared yesterday's)."""
    today = timezone.localdate()
    return lambda offset: (today + datetime.timedelta(days=offset)).isoformat()


CHANGES = (
    AccessEvent.Action.CREATE,
    AccessEvent.Action.CHANGE,
    AccessEvent.Action.TRANSITION,
    AccessEvent.Action.ERASE,
)


def rows(case_id=None) -> dict:
    """Every row a SIG form could write (of one case, when given)."""
    scope = {"case_id": case_id} if case_id else {}
    counts = {
        "persons": Person.objects.count(),
        "guardians": Guardian.objects.count(),
        "data keys": DataKey.objects.count(),
        "cases": Case.objects.count(),
        "processes": SigProcess.objects.count(),
        "tasks": Task.objects.count(),
        "consents": Consent.objects.filter(**scope).count(),
        "withdrawn": Consent.objects.filter(withdrawn_at__isnull=False, **scope).count(),
        "actions": Action.objects.filter(**scope).count(),
        "decisions": CaseDecision.objects.filter(**scope).count(),
        "team": CaseMembership.objects.filter(**scope).count(),
        "timeline": CaseEvent.objects.filter(**scope).count(),
        "legal bases": CaseLegalBasis.objects.filter(**scope).count(),
        "break the glass": BreakGlassAccess.objects.filter(**scope).count(),
    }
    if case_id:
        case = SigCase.objects.get(pk=case_id)
        counts.update(
            version=case.version,
            status=case.status,
            review=case.review_date,
            plan=case.plan,  # sealed values compare by their bytes
            screening=case.screening_note,
            close=case.close_note,
        )
    return counts


def last_event() -> int:
    return AccessEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def swedish_errors(form, field: str | None) -> list[str]:
    """The errors of ``field`` (``None``: the form's own) as a Swedish user reads them."""
    key = field or "__all__"
    assert key in form.errors, (field, form.errors.as_data())
    messages = []
    for error in form.errors.as_data()[key]:
        with translation.override("sv"):
            swedish = " ".join(error.messages)
        with translation.override("en"):
            english = " ".join(error.messages)
        # A lazy message must differ in English (the catalogues are compiled by
        # `make messages`, which `make test` runs); a plain one was translated in the
        # request, whose language is Swedish.
        if COMPILED and isinstance(error.message, Promise):
            assert swedish != english, f"not in Swedish: {english!r}"
        messages.append(swedish)
    return messages


class Poster:
    """Posts bad input as one user and checks that it was refused whole."""

    def __init__(self, user, url: str, case_id=None, form_key: str | None = None):
        self.client = Client()
        self.client.force_login(user)
        self.url = url
        self.case_id = case_id
        self.form_key = form_key

    def refused(self, data: dict, fields: set[str | None], *, form_key: str | None = None):
        before, since = rows(self.case_id), last_event()
        response = self.client.post(self.url, data)
        assert response.status_code < 500
        assert response.status_code == 200, (response.status_code, data)
        key = form_key or self.form_key or data.get("_action")
        form = response.context["form"] if key is None else response.context["forms"][key]
        assert set(form.errors) >= {name or "__all__" for name in fields}, form.errors.as_data()
        page = response.content.decode()
        for field in fields:
            for message in swedish_errors(form, field):
                assert html.escape(message) in page, message
        assert rows(self.case_id) == before
        assert not AccessEvent.objects.filter(id__gt=since, action__in=CHANGES).exists()
        return response


# --- The referral (the flow's start) ----------------------------------------------------------

REFERRAL = {
    "personnummer": personnummer(born_years_ago(16)),
    "name": PERSON_NAME,
    "area": "vivalla_baronbackarna",
    "phone": "070-174 06 11",
    "address": "Provgatan 1",
    "reason": "Orosanmälan.",
}
# More than a year ahead: in the future wherever midnight falls during the run.
# The referral's personnummer with another check digit (its own one plus one: a fixed
# "0" is the right digit on one day in ten, as the birth date follows today's date).
WRONG_CHECK_DIGIT = REFERRAL["personnummer"][:-1] + str(
    (int(REFERRAL["personnummer"][-1]) + 1) % 10
)
FUTURE_PNR = personnummer(timezone.localdate() + datetime.timedelta(days=400))
REFERRAL_CASES = [
    ("nothing at all", {key: "" for key in REFERRAL}, {"personnummer", "name", "area", "reason"}),
    ("wrong check digit", {"personnummer": WRONG_CHECK_DIGIT}, {"personnummer"}),
    ("letters", {"personnummer": "2009O815-1234"}, {"personnummer"}),
    ("no such date", {"personnummer": "20090230-1234"}, {"personnummer"}),
    ("born in the future", {"personnummer": FUTURE_PNR}, {"personnummer"}),
    ("10,000 characters", {"personnummer": LONG}, {"personnummer"}),
    ("reason too long", {"reason": LONG}, {"reason"}),
    ("name far too long", {"name": HUGE}, {"name"}),
    ("NUL in the name", {"name": "Testa\x00Provsson"}, {"name"}),
    ("area outside the choices", {"area": "gotham"}, {"area"}),
    ("phone too long", {"phone": "0" * 41}, {"phone"}),
]


@pytest.mark.parametrize(
    ("data", "fields"), [case[1:] for case in REFERRAL_CASES], ids=[c[0] for c in REFERRAL_CASES]
)
def test_referral(users, data, fields):
    poster = Poster(users["anna.social"], SigFlow.start.reverse("execute"))
    poster.refused({**REFERRAL, **data}, fields)


def test_referral_with_html_is_stored_as_text_and_shown_escaped(users):
    client = Client()
    client.force_login(users["anna.social"])
    response = client.post(
        SigFlow.start.reverse("execute"),
        {**REFERRAL, "name": f"Testa {SCRIPT}", "reason": f"Oro {SCRIPT}"},
    )
    # The receipt shows what was typed, escaped; so does the case page, to its team.
    assert response.status_code == 200
    page = response.content.decode()
    assert SCRIPT not in page
    assert page.count(html.escape(SCRIPT)) >= 2  # the name and the reason
    case = SigCase.objects.get()
    client.force_login(users["sara.samordnare"])
    page = client.get(f"/arenden/fall/{case.pk}/").content.decode()
    assert SCRIPT not in page
    assert page.count(html.escape(SCRIPT)) >= 2


# --- Task forms ---------------------------------------------------------------------------------


def _task_poster(users, flow_case, node: str, username: str) -> Poster:
    task = flow_case.task(node)
    if task.owner_id is None:
        client = Client()
        client.force_login(users[username])
        client.post(task.flow_task.reverse("assign", args=[task.process_id, task.pk]))
    url = task.flow_task.reverse("execute", args=[task.process_id, task.pk])
    return Poster(users[username], url, case_id=flow_case.case.pk)


def test_screening(users):
    flow_case = FlowDriver(users).build("screen")
    poster = _task_poster(users, flow_case, "screen", "sara.samordnare")
    version = flow_case.case.version
    base = {"_action": "screen", "version": version}
    per, anna = users["per.polis"], users["anna.social"]
    for data, fields in [
        ({}, {"outcome"}),
        ({"outcome": "accept"}, {"lead"}),
        ({"outcome": "maybe"}, {"outcome"}),
        ({"outcome": "accept", "lead": per.pk}, {"lead"}),  # not a social worker
        ({"outcome": "accept", "lead": anna.pk, "police_contact": anna.pk}, {"police_contact"}),
        ({"outcome": "accept", "lead": 999_999}, {"lead"}),
        ({"outcome": "accept", "lead": "'; DROP TABLE casework_case; --"}, {"lead"}),
        ({"outcome": "reject"}, {"close_reason"}),
        ({"outcome": "reject", "close_reason": "other"}, {"note"}),
        ({"outcome": "reject", "close_reason": "goals_met"}, {"close_reason"}),  # not offered
        ({"outcome": "accept", "lead": anna.pk, "note": LONG}, {"note"}),
        ({"outcome": "accept", "lead": anna.pk, "note": "a\x00b"}, {"note"}),
    ]:
        poster.refused({**base, **data}, fields)
    # A missing or forged version (a hidden field): the form says to reload.
    for version_field in ({}, {"version": ""}, {"version": "abc"}, {"version": "0"}):
        data = {**base, "outcome": "accept", "lead": anna.pk, "police_contact": per.pk}
        data.pop("version")
        response = poster.refused({**data, **version_field}, {None})
        assert "version" in response.context["forms"]["screen"].errors
    # A forged, stale version: the case was changed by someone else (a banner).
    stale = {
        **base,
        "outcome": "accept",
        "lead": anna.pk,
        "police_contact": per.pk,
        "version": version + 7,
    }
    before = rows(flow_case.case.pk)
    response = poster.client.post(poster.url, stale)
    assert response.status_code == 200
    with translation.override("sv"):
        from casework.services.cases import CaseConflict

        assert html.escape(str(CaseConflict.message)) in response.content.decode()
    assert rows(flow_case.case.pk) == before


def test_screening_step_not_offered_now(users):
    """A step this state does not offer (here: "begin" again) is refused with a message."""
    flow_case = FlowDriver(users).build("screen")
    poster = _task_poster(users, flow_case, "screen", "sara.samordnare")
    before = rows(flow_case.case.pk)
    for action in ("begin", "approve", "", "../../admin"):
        response = poster.client.post(
            poster.url, {"_action": action, "version": flow_case.case.version}
        )
        assert response.status_code == 302
        assert rows(flow_case.case.pk) == before


def test_consent_forms(users, day):
    flow_case = FlowDriver(users).build("consent")
    case = flow_case.case
    poster = _task_poster(users, flow_case, "consent", "anna.social")
    version = case.version
    social = users["anna.social"].organisation_id
    # Guardian
    for data, fields in [
        ({}, {"guardian_name"}),
        ({"guardian_name": "  "}, {"guardian_name"}),
        ({"guardian_name": HUGE}, {"guardian_name"}),
        ({"guardian_name": "Vera", "guardian_phone": "0" * 41}, {"guardian_phone"}),
    ]:
        poster.refused({"_action": "guardian", "version": version, **data}, fields)
    # Consent
    other_person_guardian = _guardian_of_another_person(users)
    for data, fields in [
        ({}, {"giver", "decision", "form"}),
        ({"giver": "neighbour", "decision": "given", "form": "written"}, {"giver"}),
        ({"giver": "self", "decision": "maybe", "form": "written"}, {"decision"}),
        ({"giver": "self", "decision": "given", "form": "telepathy"}, {"form"}),
        ({"giver": "self", "decision": "given", "form": "written"}, {"organisations"}),
        (
            {"giver": "guardian", "decision": "given", "form": "written", "organisations": social},
            {"guardian"},
        ),
        (
            {
                "giver": "guardian",
                "guardian": str(other_person_guardian.pk),
                "decision": "given",
                "form": "written",
                "organisations": social,
            },
            {"guardian"},
        ),
        (
            {
                "giver": "self",
                "decision": "given",
                "form": "written",
                "organisations": social,
                "valid_until": day(-1),
            },
            {"valid_until"},
        ),
        (
            {
                "giver": "self",
                "decision": "given",
                "form": "written",
                "organisations": social,
                "valid_until": "2026-02-30",
            },
            {"valid_until"},
        ),
        (
            {"giver": "self", "decision": "given", "form": "written", "organisations": 999_999},
            {"organisations"},
        ),
    ]:
        poster.refused(
            {"_action": "consent", "version": version, "purposes": ["coordination"], **data},
            fields,
        )
    # "Consents complete" and "refused" before the consents are there: the guards speak.
    poster.refused({"_action": "complete", "version": version}, {None})
    poster.refused({"_action": "refused", "version": version}, {None})


def test_guardian_with_html_is_shown_escaped(users):
    flow_case = FlowDriver(users).build("consent")
    poster = _task_poster(users, flow_case, "consent", "anna.social")
    response = poster.client.post(
        poster.url,
        {"_action": "guardian", "version": flow_case.case.version, "guardian_name": SCRIPT},
    )
    assert response.status_code == 302
    page = poster.client.get(f"/arenden/fall/{flow_case.case.pk}/").content.decode()
    assert SCRIPT not in page
    assert html.escape(SCRIPT) in page


def test_decision(users):
    flow_case = FlowDriver(users).build("decide")
    poster = _task_poster(users, flow_case, "decide_social", "anna.social")
    base = {"_action": "decide", "version": flow_case.case.version}
    for data, fields in [
        ({}, {"decision"}),
        ({"decision": "perhaps"}, {"decision"}),
        ({"decision": "decline"}, {"note"}),
        ({"decision": "decline", "note": "   "}, {"note"}),
        ({"decision": "start", "note": LONG}, {"note"}),
        ({"decision": "start", "note": "a\x00b"}, {"note"}),
    ]:
        poster.refused({**base, **data}, fields)


def planned_action(day) -> dict:
    return {
        "_action": "action",
        "kind": "support_talks",
        "status": "planned",
        "date": day(0),
        "visibility": "team",
    }


def action_cases(day) -> list[tuple[dict, set]]:
    return [
        ({"kind": ""}, {"kind"}),
        ({"kind": "surveillance"}, {"kind"}),
        ({"status": "cancelled"}, {"status"}),
        ({"date": ""}, {"date"}),
        ({"date": "2026-13-01"}, {"date"}),
        ({"date": "tomorrow"}, {"date"}),
        ({"status": "done", "date": day(1)}, {"date"}),  # done, in the future
        ({"date": day(-31)}, {"date"}),  # planned, long ago
        ({"visibility": "everyone"}, {"visibility"}),
        ({"organisation": 999_999}, {"organisation"}),
        ({"note": LONG}, {"note"}),
        ({"note": "a\x00b"}, {"note"}),
    ]


def test_plan_forms(users, day):
    flow_case = FlowDriver(users).build("draft_plan")
    poster = _task_poster(users, flow_case, "draft_plan", "anna.social")
    version = flow_case.case.version
    for data, fields in action_cases(day):
        poster.refused({**planned_action(day), "version": version, **data}, fields)
    base = {"_action": "plan", "version": version, "plan": "Mål.", "review_date": day(1)}
    for data, fields in [
        ({"plan": ""}, {"plan"}),
        ({"plan": LONG}, {"plan"}),
        ({"review_date": ""}, {"review_date"}),
        ({"review_date": day(-1)}, {"review_date"}),
        ({"review_date": day(0)}, {"review_date"}),
        ({"review_date": "31/12/2026x"}, {"review_date"}),
    ]:
        poster.refused({**base, **data}, fields)


def test_plan_and_action_notes_with_html_are_shown_escaped(users, day):
    flow_case = FlowDriver(users).build("draft_plan")
    poster = _task_poster(users, flow_case, "draft_plan", "anna.social")
    case = flow_case.case
    response = poster.client.post(
        poster.url, {**planned_action(day), "version": case.version, "note": SCRIPT}
    )
    assert response.status_code == 302
    case.refresh_from_db()
    response = poster.client.post(
        poster.url,
        {"_action": "plan", "version": case.version, "plan": SCRIPT, "review_date": day(1)},
    )
    assert response.status_code == 302
    page = poster.client.get(f"/arenden/fall/{case.pk}/").content.decode()
    assert SCRIPT not in page
    assert page.count(html.escape(SCRIPT)) >= 2  # the plan and the action's note


def test_approval(users):
    flow_case = FlowDriver(users).build("approve")
    poster = _task_poster(users, flow_case, "approve", "sara.samordnare")
    base = {"_action": "review", "version": flow_case.case.version}
    for data, fields in [
        ({}, {"outcome"}),
        ({"outcome": "rubber-stamp"}, {"outcome"}),
        ({"outcome": "return"}, {"comment"}),
        ({"outcome": "approve", "comment": LONG}, {"comment"}),
    ]:
        poster.refused({**base, **data}, fields)


def test_follow_up(users, day):
    flow_case = FlowDriver(users).build("follow_up:begun")
    poster = _task_poster(users, flow_case, "follow_up", "anna.social")
    base = {"_action": "follow_up", "version": flow_case.case.version}
    for data, fields in [
        ({}, {"outcome"}),
        ({"outcome": "continue"}, {"review_date"}),
        ({"outcome": "continue", "review_date": day(-1)}, {"review_date"}),
        ({"outcome": "continue", "review_date": day(0)}, {"review_date"}),
        ({"outcome": "close"}, {"close_reason"}),
        ({"outcome": "close", "close_reason": "bored"}, {"close_reason"}),
        ({"outcome": "close", "close_reason": "other"}, {"note"}),
        ({"outcome": "close", "close_reason": "goals_met", "note": LONG}, {"note"}),
    ]:
        poster.refused({**base, **data}, fields)


# --- The case page's forms ----------------------------------------------------------------------


def test_case_page_forms(users, day):
    case = sig_case(users, Status.ACTIVE)
    url = f"/arenden/fall/{case.pk}/"
    anna = Poster(users["anna.social"], url, case_id=case.pk)
    version = case.version
    done_action = {**planned_action(day), "status": "done"}
    for data, fields in action_cases(day):
        if data.get("date") == day(-31):
            data = {**data, "status": "planned"}
        anna.refused({**done_action, "version": version, **data}, fields)
    for data, fields in [
        ({}, {"close_reason"}),
        ({"close_reason": "bored"}, {"close_reason"}),
        ({"close_reason": "other"}, {"note"}),
        ({"close_reason": "goals_met", "note": LONG}, {"note"}),
    ]:
        anna.refused({"_action": "close", "version": version, **data}, fields)
    osl = LegalBasis.objects.get(code="osl-10-18a")
    consent_basis = LegalBasis.objects.get(code="consent")
    for data, fields in [
        ({}, {"legal_basis", "justification"}),
        ({"legal_basis": consent_basis.pk, "justification": "Skäl."}, {"legal_basis"}),
        ({"legal_basis": 999_999, "justification": "Skäl."}, {"legal_basis"}),
        ({"legal_basis": osl.pk, "justification": LONG}, {"justification"}),
        (
            {"legal_basis": osl.pk, "justification": "Skäl.", "valid_until": day(-1)},
            {"valid_until"},
        ),
    ]:
        anna.refused({"_action": "legal_basis", "version": version, **data}, fields)
    other_case = sig_case(users, Status.ACTIVE)
    for consent, fields in [
        ("", {"consent"}),
        ("not-a-uuid", {"consent"}),
        (str(uuid.uuid4()), {None}),
        (str(other_case.consents.first().pk), {None}),  # another case's consent
    ]:
        anna.refused({"_action": "withdraw", "consent": consent}, fields)
    # An action the page does not have: a message, nothing done.
    before = rows(case.pk)
    response = anna.client.post(url, {"_action": "erase", "version": version})
    assert response.status_code == 302
    assert rows(case.pk) == before


def test_withdrawing_a_withdrawn_consent(users):
    """With a statute recorded the case stays open; the second withdrawal is refused."""
    from tests.workflows.sig.factories import PURPOSE, record_statute

    case = sig_case(users, Status.ACTIVE)
    record_statute(users, case)
    own = case.consents.get(giver=Consent.Giver.SELF)
    poster = Poster(users["anna.social"], f"/arenden/fall/{case.pk}/", case_id=case.pk)
    response = poster.client.post(poster.url, {"_action": "withdraw", "consent": str(own.pk)})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Status.ACTIVE  # OSL 10:18 a still applies
    poster.refused({"_action": "withdraw", "consent": str(own.pk)}, {None})
    assert PURPOSE


def test_close_note_and_legal_basis_with_html_are_shown_escaped(users):
    case = sig_case(users, Status.ACTIVE)
    client = Client()
    client.force_login(users["anna.social"])
    url = f"/arenden/fall/{case.pk}/"
    osl = LegalBasis.objects.get(code="osl-10-18a")
    response = client.post(
        url,
        {
            "_action": "legal_basis",
            "version": case.version,
            "legal_basis": osl.pk,
            "justification": SCRIPT,
        },
    )
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert SCRIPT not in page
    assert html.escape(SCRIPT) in page


# --- Break-the-glass and the case search --------------------------------------------------------


def test_break_the_glass(users):
    case = sig_case(users, Status.ACTIVE)
    poster = Poster(users["sara.samordnare"], "/arenden/bryt-glaset/", case_id=case.pk)
    reason = "Akut hot mot personen ikväll."
    for data, fields in [
        ({}, {"reference", "reason"}),
        ({"reference": case.reference, "reason": "kort"}, {"reason"}),
        ({"reference": case.reference, "reason": LONG}, {"reason"}),
        ({"reference": "SIG-1999-9999", "reason": reason}, {"reference"}),
        ({"reference": HUGE, "reason": reason}, {"reference"}),
        ({"reference": case.reference, "reason": "a\x00" * 10}, {"reason"}),
    ]:
        poster.refused(data, fields, form_key=None)


@pytest.mark.parametrize(
    "value", ["19991399-0000", "abc", LONG, "2009O815-1234", FUTURE_PNR, "\x00"]
)
def test_case_search_by_personnummer(users, value):
    client = Client()
    client.force_login(users["anna.social"])
    response = client.get("/arenden/fall/", {"personnummer": value})
    assert response.status_code == 200
    form = response.context["form"]
    messages = swedish_errors(form, "personnummer")
    page = response.content.decode()
    assert any(html.escape(message) in page for message in messages)
    assert not AccessEvent.objects.filter(action=AccessEvent.Action.CONSULT).exists()


def _guardian_of_another_person(users):
    other = sig_case(users, Status.CONSENT_PENDING)
    record_full_consent(users, other)
    return other.person.guardians.get()
