"""The auditor's pages: granskare only, every view logged, inert output, never a 500."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Q

from audit import integrity
from audit.models import AccessEvent
from audit.services import Action, Outcome, record_event
from tests.conftest import demo_users

from .helpers import raw, triggers_disabled

AUDITOR = "greta.granskare"
OTHERS = demo_users(but={AUDITOR, "maja.avhopp"})
PAGES = [
    ("get", "/granskning/"),
    ("get", "/granskning/?action=consult"),
    ("get", "/granskning/handelse/{event}/"),
    ("get", "/granskning/export.csv"),
    ("get", "/granskning/loggkontroll/"),
    ("get", "/granskning/integritet/"),
    ("post", "/granskning/integritet/"),
    ("get", "/granskning/brutet-glas/"),
    ("get", "/granskning/paminnelser/"),
]
PERSON = uuid.UUID("0f6b9b52-1d4e-4c1a-8b39-6f0b3d2d7a10")
STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture
def event(demo):
    return record_event(
        action=Action.CONSULT,
        user=demo["anna.social"],
        object_type="casework.person",
        object_id=str(PERSON),
        person_id=PERSON,
        fields=["name"],
        purpose="Planera insats",
    )


@pytest.fixture
def auditor(demo, client):
    client.force_login(demo[AUDITOR])
    return client


@pytest.mark.parametrize("username", OTHERS)
@pytest.mark.parametrize(("method", "page"), PAGES)
def test_nobody_but_the_auditor_sees_any_auditor_page(demo, client, event, username, method, page):
    client.force_login(demo[username])
    response = getattr(client, method)(page.format(event=event.pk))
    assert response.status_code == 403
    assert b"Planera insats" not in response.content


@pytest.mark.parametrize(("method", "page"), PAGES)
def test_anonymous_users_are_sent_to_the_login_page(db, client, method, page):
    response = getattr(client, method)(page.format(event=1))
    assert response.status_code == 302
    assert response["Location"].startswith("/konto/logga-in/")


@pytest.mark.parametrize(("method", "page"), PAGES)
def test_the_auditor_sees_every_page_and_each_view_is_logged(auditor, demo, event, method, page):
    before = AccessEvent.objects.filter(user=demo[AUDITOR]).count()
    response = getattr(auditor, method)(page.format(event=event.pk))
    assert response.status_code == 200
    own = AccessEvent.objects.filter(user=demo[AUDITOR]).order_by("id")[before:]
    assert len(own) == 1
    assert own[0].action in {Action.AUDIT_READ, Action.EXPORT}
    assert own[0].roles == "granskare"


def test_search_filters_by_user_organisation_action_outcome_period_and_person(auditor, demo):
    anna, per = demo["anna.social"], demo["per.polis"]
    other = uuid.uuid4()
    record_event(action=Action.CONSULT, user=anna, person_id=PERSON, purpose="a")
    record_event(action=Action.CONSULT, user=per, person_id=other, purpose="b")
    record_event(action=Action.ACCESS_DENIED, user=per, outcome=Outcome.DENIED, purpose="c")

    def found(**query) -> set[str]:
        response = auditor.get("/granskning/", query)
        assert response.status_code == 200
        events = response.context["result"].events
        return {e.purpose for e in events if e.action != Action.AUDIT_READ}

    assert found(username="anna.social") >= {"a"}
    assert "b" not in found(username="anna.social")
    assert found(organisation="Lokalpolisområde Örebro") == {"b", "c"}
    assert found(action="consult", username="per.polis") == {"b"}
    assert found(outcome="denied", username="per.polis") == {"c"}
    assert found(person=str(PERSON)) == {"a"}
    today = dt.datetime.now(STOCKHOLM).date()
    assert found(date_from=today.isoformat(), date_to=today.isoformat(), person=str(other)) == {"b"}
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    assert found(date_from=yesterday, date_to=yesterday) == set()


def test_the_search_is_logged_without_any_personnummer(auditor, demo):
    auditor.get("/granskning/", {"username": "anna.social", "person": str(PERSON)})
    logged = AccessEvent.objects.filter(user=demo[AUDITOR]).latest("id")
    assert logged.details["filters"] == {"username": "anna.social", "person_ids": [str(PERSON)]}


def test_personnummer_search_says_it_is_not_available_until_wired(auditor, settings):
    settings.AUDIT_PERSON_LOOKUP = ""
    response = auditor.get("/granskning/", {"person": "19121212-1212"})
    assert response.status_code == 400
    assert "UUID" in response.content.decode()
    assert "19121212" not in str(list(AccessEvent.objects.values_list("details", flat=True)))


LOOKUPS = []


def lookup_for_tests(personnummer: str, *, user) -> list[uuid.UUID]:
    LOOKUPS.append(user.username)
    if personnummer == "abc":
        raise ValueError("not a personnummer")
    return [PERSON] if personnummer == "19121212-1212" else []


def test_a_configured_personnummer_lookup_plugs_in(auditor, event, settings):
    settings.AUDIT_PERSON_LOOKUP = "tests.audit.test_views.lookup_for_tests"
    response = auditor.get("/granskning/", {"person": "19121212-1212"})
    assert [e.pk for e in response.context["result"].events] == [event.pk]
    response = auditor.get("/granskning/", {"person": "19000101-0000"})
    assert response.context["result"].events == []
    assert LOOKUPS[-2:] == [AUDITOR, AUDITOR]
    response = auditor.get("/granskning/", {"person": "abc"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "not-a-date"},
        {"date_from": "2026-05-02", "date_to": "2026-05-01"},
        {"action": "peek"},
        {"outcome": "maybe"},
        {"organisation": "Ingen sådan"},
        {"person": "x" * 500},
        {"before": "abc"},
        {"after": "-5"},
        {"before": "99999999999999999999999"},
    ],
)
def test_bad_input_is_a_message_never_a_500(auditor, query):
    response = auditor.get("/granskning/", query)
    assert response.status_code in {200, 400}
    response = auditor.get("/granskning/export.csv", query)
    assert response.status_code in {200, 400}


def test_bad_review_input_is_a_message(auditor):
    response = auditor.get(
        "/granskning/loggkontroll/", {"date_from": "2020-01-01", "date_to": "2026-01-01"}
    )
    assert response.status_code == 400
    response = auditor.get("/granskning/loggkontroll/", {"date_from": "x", "seed": "-1"})
    assert response.status_code == 400


def test_an_unknown_event_is_404(auditor):
    assert auditor.get("/granskning/handelse/987654321/").status_code == 404


def test_keyset_pagination_walks_every_event_once(auditor, demo):
    for index in range(120):
        record_event(action=Action.CHANGE, purpose=f"p{index}")
    seen: list[int] = []
    query = {"action": "change"}
    response = auditor.get("/granskning/", query)
    while True:
        result = response.context["result"]
        seen += [e.pk for e in result.events]
        if result.older is None:
            break
        response = auditor.get("/granskning/", {**query, "before": result.older})
    expected = list(
        AccessEvent.objects.filter(action="change").order_by("-id").values_list("id", flat=True)
    )
    assert seen == expected
    newer = auditor.get("/granskning/", {**query, "after": seen[-1]}).context["result"]
    assert [e.pk for e in newer.events] == seen[-51:-1]


def test_log_injection_is_stored_and_shown_inertly(auditor, demo):
    hostile = "<script>alert(1)</script>\n2026-01-01 login admin\x1b[31m\u2028x"
    event = record_event(
        action=Action.CONSULT,
        user=demo["anna.social"],
        purpose=hostile,
        details={"note": hostile},
    )
    event.refresh_from_db()
    assert "\n" not in event.purpose and "\x1b" not in event.purpose
    page = auditor.get(f"/granskning/handelse/{event.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\n2026-01-01 login admin\\x1b[31m\\u2028x" in page
    assert "\u2028" not in page


def test_csv_export_is_injection_safe_and_logged(auditor, demo):
    for purpose in ['=HYPERLINK("http://x")', "+1", "-1", "@SUM(A1)", "\tx", "vanlig text"]:
        record_event(action=Action.CONSULT, user=demo["anna.social"], purpose=purpose)
    response = auditor.get("/granskning/export.csv", {"action": "consult"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Cache-Control"] == "no-store"
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    header, *data = rows
    purpose = header.index(str(AccessEvent._meta.get_field("purpose").verbose_name))
    purposes = {row[purpose] for row in data}
    assert {'\'=HYPERLINK("http://x")', "'+1", "'-1", "'@SUM(A1)", "vanlig text"} <= purposes
    assert "\\tx" in purposes  # stored inertly already
    assert all(
        not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row
    )
    export = AccessEvent.objects.filter(action=Action.EXPORT).get()
    assert export.user_id == demo[AUDITOR].pk
    assert export.details["filters"] == {"action": "consult"}
    assert export.details["format"] == "csv"


def test_log_review_applies_every_rule(auditor, demo, monkeypatch):
    from audit import review
    from casework import policy

    anna, per = demo["anna.social"], demo["per.polis"]
    night = dt.datetime(2026, 3, 4, 2, 30, tzinfo=STOCKHOLM)  # a Wednesday
    day = dt.datetime(2026, 3, 4, 10, 0, tzinfo=STOCKHOLM)
    saturday = dt.datetime(2026, 3, 7, 11, 0, tzinfo=STOCKHOLM)
    own_person, other_person = uuid.uuid4(), uuid.uuid4()
    for when, user, person in [
        (night, anna, own_person),
        (day, anna, own_person),
        (day, anna, other_person),
        (saturday, per, other_person),
    ]:
        event = record_event(action=Action.CONSULT, user=user, person_id=person)
        AccessEvent.objects.filter(pk=event.pk)  # (times set below, before sealing)
        _set_time(event.pk, when)
    glass = record_event(action=Action.BREAK_GLASS, user=per, person_id=other_person)
    _set_time(glass.pk, day)
    for _ in range(4):
        _set_time(record_event(action=Action.CONSULT, user=per, person_id=own_person).pk, day)

    monkeypatch.setattr(
        policy, "own_case_access", lambda start, end: Q(user_id=anna.pk, person_id=own_person)
    )
    start = dt.datetime(2026, 3, 1, tzinfo=STOCKHOLM)
    end = dt.datetime(2026, 4, 1, tzinfo=STOCKHOLM)
    report = review.build_report(
        start=start, end=end, seed=7, working_hours=(7, 19), volume_threshold=3, sample_size=3
    )
    assert {(e.username, e.person_id) for e in report.outside_own_cases.events} == {
        ("anna.social", other_person),
        ("per.polis", other_person),
        ("per.polis", own_person),
    }
    assert {e.occurred_at for e in report.off_hours.events} == {night, saturday}
    assert [(r.username, r.count) for r in report.high_volume] == [("per.polis", 5)]
    assert [e.pk for e in report.break_the_glass.events] == [glass.pk]
    assert len(report.sample) == 3
    again = review.build_report(
        start=start, end=end, seed=7, working_hours=(7, 19), volume_threshold=3, sample_size=3
    )
    assert [e.pk for e in again.sample] == [e.pk for e in report.sample]

    response = auditor.get(
        "/granskning/loggkontroll/", {"date_from": "2026-03-01", "date_to": "2026-03-31", "seed": 7}
    )
    assert response.status_code == 200
    page = response.content.decode()
    for rule in ["outside-own-cases", "off-hours", "high-volume", "break-the-glass", "sample"]:
        assert f'data-rule="{rule}"' in page


def _set_time(event_id: int, when: dt.datetime) -> None:
    with triggers_disabled("audit_accessevent"):
        raw("UPDATE audit_accessevent SET occurred_at = %s WHERE id = %s", [when, event_id])


def test_integrity_page_shows_an_intact_log_then_the_first_bad_entry(
    auditor, demo, event, signing_key
):
    integrity.write_checkpoint()  # without one, the check fails (test_chain_jam.py)
    response = auditor.post("/granskning/integritet/")
    assert 'data-verification="ok"' in response.content.decode()
    integrity.seal()
    with triggers_disabled():
        raw("UPDATE audit_accessevent SET purpose = 'ändrad' WHERE id = %s", [event.pk])
    page = auditor.post("/granskning/integritet/").content.decode()
    assert 'data-verification="failed"' in page
    assert f"access entry #{event.pk}: edited" in page
    logged = AccessEvent.objects.filter(user=demo[AUDITOR]).latest("id")
    assert logged.details["verified"] is False
