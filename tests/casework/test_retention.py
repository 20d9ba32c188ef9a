"""Retention (gallring): rules as data with four eyes, and ``manage.py cull``.

Time does not move in tests: the cull runs "as on" a later day (``today``/``--date``),
the stand-in for the passing of years; a case's close is set by a queryset update where
the test is about the rule, not about the flow.
"""

from __future__ import annotations

import datetime
import itertools
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from audit.models import AccessEvent
from casework import policy
from casework.crypto.errors import DataKeyMissing
from casework.crypto.keystore import CASE, PERSON, load_data_key
from casework.models import AdminChangeRequest, Case, CaseEvent, DataKey, Person, RetentionRule
from casework.retention import add_years
from casework.selectors import retention as selectors
from casework.services import administration, create_person
from casework.services import retention as services
from casework.services.retention_rules import rule_values
from casework.statistics import periods, summary
from casework.statistics.registry import get
from tests.workflows.conftest import personnummer
from tests.workflows.sig.factories import PERSON_NAME, sig_case

pytestmark = pytest.mark.django_db(databases=["default", "keystore"])
REASON = "Arkivmyndighetens beslut 2026-12-01"
THIS_YEAR = timezone.localdate().year
# A case with its last entry this year is due on 1 January six years later.
DUE_DAY = datetime.date(THIS_YEAR + 6, 1, 1)


@pytest.fixture
def users(demo):
    return demo


_serials = itertools.count(200)


def person_born(users, born: datetime.date | None = None):
    """A person born on ``born`` (default: the 3rd of a month 16 years ago, which no
    research exception keeps)."""
    born = born or datetime.date(THIS_YEAR - 16, 4, 3)
    return create_person(
        user=users["anna.social"],
        purpose="Test av gallring",
        name=PERSON_NAME,
        personnummer=personnummer(born, serial=f"{next(_serials) % 1000:03d}"),
        area="other",
        address="Provgatan 1",
    )


def closed_case(users, *, person=None, owner=None):
    """A SIG case closed today (its close set directly: the rule is under test); it has a
    data key of its own from its opening."""
    case = sig_case(users, person=person or person_born(users))
    Case.objects.filter(pk=case.pk).update(
        closed_at=timezone.now(),
        close_reason=Case.CloseReason.GOALS_MET,
        **({"owner_organisation": owner} if owner else {}),
    )
    case.refresh_from_db()
    return case


def social_rule() -> RetentionRule:
    return RetentionRule.objects.get(organisation__isnull=True, organisation_kind="social_services")


# --- The default rules and the last entry -----------------------------------------------------


def test_the_defaults_are_seeded_and_under_change_history():
    social = social_rule()
    assert (
        social.event,
        social.years,
        social.end_of_following_year,
        social.research_exception,
    ) == (
        "last_entry",
        5,
        True,
        True,
    )
    police = RetentionRule.objects.get(organisation__isnull=True, organisation_kind="police")
    assert (police.event, police.years, police.end_of_following_year) == ("closed", 3, False)


def test_the_last_entry_is_the_latest_timeline_action_or_decision(users):
    case = closed_case(users)
    later = timezone.now() + datetime.timedelta(days=400)
    CaseEvent.objects.filter(pk=CaseEvent.objects.filter(case=case).first().pk).update(at=later)
    row = selectors.with_last_entry(Case.objects.filter(pk=case.pk)).get()
    assert row.last_entry_day == timezone.localdate(later)
    assert row.closed_day == timezone.localdate()


def test_the_most_specific_rule_decides(users):
    social_org = users["anna.social"].organisation
    own = RetentionRule.objects.create(
        organisation=social_org, programme="sig", event="closed", years=2
    )
    rules = selectors.Rules()
    assert (
        rules.rule_for(organisation_id=social_org.pk, kind="social_services", programme="sig")
        == own
    )
    assert (
        rules.rule_for(organisation_id=social_org.pk, kind="social_services", programme="sspf")
        == social_rule()
    )
    assert rules.rule_for(organisation_id=999, kind="school", programme="sig") is None


# --- Dry run -----------------------------------------------------------------------------------


def test_dry_run_lists_due_cases_changes_nothing_and_prints_no_personal_data(users):
    due, young = closed_case(users), closed_case(users)
    Case.objects.filter(pk=young.pk).update(closed_at=timezone.now() + datetime.timedelta(days=400))
    CaseEvent.objects.filter(case=young).update(at=timezone.now() + datetime.timedelta(days=400))
    events = AccessEvent.objects.count()
    out = StringIO()
    call_command("cull", "--dry-run", "--date", DUE_DAY.isoformat(), stdout=out)
    text = out.getvalue()
    assert due.reference in text and young.reference not in text
    assert str(DUE_DAY) in text and f"{THIS_YEAR + 6}-12-31" in text
    assert users["anna.social"].organisation.name in text
    assert "Skulle gallras: 1 ärenden" in text
    for secret in (PERSON_NAME, str(due.person_id), "Provgatan", "070-174"):
        assert secret not in text
    assert not Case.objects.filter(culled_at__isnull=False).exists()
    assert DataKey.objects.filter(owner_type=CASE, owner_id=due.pk).exists()
    assert AccessEvent.objects.count() == events
    # The day before, nothing is due.
    out = StringIO()
    call_command(
        "cull", "--dry-run", "--date", str(DUE_DAY - datetime.timedelta(days=1)), stdout=out
    )
    assert due.reference not in out.getvalue()


# --- The real run -----------------------------------------------------------------------------


def test_cull_marks_destroys_logs_keeps_statistics_and_erases_the_person(users, client):
    case = sig_case(users, "closed", person=person_born(users))
    period = periods.parse(f"{THIS_YEAR}")
    counts_before = summary.counts(get("sig"), [period])[period]
    out = StringIO()
    call_command("cull", "--date", DUE_DAY.isoformat(), stdout=out)
    assert "Gallrade ärenden: 1" in out.getvalue() and "raderade personer: 1" in out.getvalue()
    case.refresh_from_db()
    assert case.culled_at is not None
    with pytest.raises(DataKeyMissing):
        load_data_key(owner_type=CASE, owner_id=case.pk)
    (event,) = AccessEvent.objects.filter(action="cull")
    assert event.object_id == str(case.pk) and event.person_id == case.person_id
    assert event.details["reference"] == case.reference
    assert event.details["rule"] == social_rule().pk
    assert event.details["due"] == str(DUE_DAY) and event.user is None
    # The person had nothing else: erased with the one erasure service.
    person = Person.objects.get(pk=case.person_id)
    assert person.erased_at is not None
    assert AccessEvent.objects.filter(action="erase", person_id=person.pk).count() == 1
    # Statistics count the culled case as before.
    assert summary.counts(get("sig"), [period])[period] == counts_before
    # The case page shows "(gallrad)", never a 500, and nothing of the case.
    client.force_login(users["sara.samordnare"])
    page = client.get(f"/arenden/fall/{case.pk}/")
    assert page.status_code == 200
    assert b"(gallrad)" in page.content and b"gallrades" in page.content
    assert PERSON_NAME.encode() not in page.content
    # A second run finds nothing more to do (idempotent).
    out = StringIO()
    call_command("cull", "--date", DUE_DAY.isoformat(), stdout=out)
    assert "Gallrade ärenden: 0" in out.getvalue()
    assert AccessEvent.objects.filter(action="cull").count() == 1


def test_a_person_with_another_case_is_kept(users):
    person = person_born(users)
    old = closed_case(users, person=person)
    other = sig_case(users, person=person)  # still open
    result = services.cull(today=DUE_DAY)
    assert [d.case_id for d in result.culled] == [old.pk]
    assert result.persons_erased == 0
    assert Person.objects.get(pk=person.pk).erased_at is None
    assert load_data_key(owner_type=PERSON, owner_id=person.pk)
    # Once the other case is culled too, the person goes.
    Case.objects.filter(pk=other.pk).update(closed_at=timezone.now())
    assert services.cull(today=DUE_DAY).persons_erased == 1


def test_research_exception_keeps_persons_born_on_the_5th_15th_25th(users):
    born = datetime.date(THIS_YEAR - 16, 3, 15)
    kept = closed_case(users, person=person_born(users, born))
    culled = closed_case(users, person=person_born(users, born.replace(day=16)))
    result = services.cull(today=DUE_DAY + datetime.timedelta(days=3650))
    assert [d.case_id for d in result.culled] == [culled.pk]
    assert Case.objects.get(pk=kept.pk).culled_at is None


def test_police_rule_three_years_after_the_close(users):
    police = users["per.polis"].organisation
    case = closed_case(users, owner=police)
    three_years = add_years(timezone.localdate(), 3)
    assert not services.cull(today=three_years - datetime.timedelta(days=1)).culled
    assert [d.case_id for d in services.cull(today=three_years).culled] == [case.pk]


def test_an_interrupted_cull_is_completed_by_the_next_run(users, monkeypatch):
    case = closed_case(users)

    def crash(*events):
        raise RuntimeError("the process died")

    monkeypatch.setattr(services, "record_events", crash)
    with pytest.raises(RuntimeError):
        services.cull(today=DUE_DAY)
    monkeypatch.undo()
    # The key went first: nothing can be read although the case is not marked yet.
    assert Case.objects.get(pk=case.pk).culled_at is None
    assert not DataKey.objects.filter(owner_type=CASE, owner_id=case.pk).exists()
    result = services.cull(today=DUE_DAY)
    assert [d.case_id for d in result.culled] == [case.pk]
    assert Case.objects.get(pk=case.pk).culled_at is not None
    assert AccessEvent.objects.filter(action="cull").count() == 1
    assert result.persons_erased == 1


def test_a_run_interrupted_before_the_erasure_erases_next_time(users, monkeypatch):
    case = closed_case(users)
    monkeypatch.setattr(services, "erase_persons_left_behind", lambda **kwargs: 0)
    services.cull(today=DUE_DAY)
    monkeypatch.undo()
    assert Person.objects.get(pk=case.person_id).erased_at is None
    assert services.cull(today=DUE_DAY).persons_erased == 1
    assert Person.objects.get(pk=case.person_id).erased_at is not None


def test_a_rule_made_inactive_culls_nothing(users):
    closed_case(users)
    RetentionRule.objects.update(is_active=False)
    assert not services.cull(today=DUE_DAY).culled


# --- Four eyes ----------------------------------------------------------------------------------


def _values(rule, **changes):
    return {**rule_values(rule), **changes}


def test_a_rule_changes_only_when_a_second_administrator_approves(demo):
    adam, berit = demo["adam.admin"], demo["berit.admin"]
    rule = social_rule()
    change_request = services.request_rule_change(
        user=adam, rule=rule, values=_values(rule, years=7), reason=REASON
    )
    assert social_rule().years == 5
    with pytest.raises(ValidationError, match="egen begäran"):
        administration.approve(user=adam, request_id=change_request.pk)
    administration.approve(user=berit, request_id=change_request.pk)
    assert social_rule().years == 7
    steps = AccessEvent.objects.filter(
        action="account_change", details__kind="retention_rule"
    ).values_list("details__step", flat=True)
    assert sorted(steps) == ["approve", "request"]
    # The change history holds the rule's rows as they changed.
    from audit.models import ChangeRecord

    assert ChangeRecord.objects.filter(
        table_name="casework_retentionrule", row_id=str(rule.pk)
    ).exists()


def test_a_new_rule_through_four_eyes(demo):
    adam, berit = demo["adam.admin"], demo["berit.admin"]
    police = demo["per.polis"].organisation
    values = {
        "organisation": police.pk,
        "organisation_kind": "",
        "programme": "defector",
        "controller": police.pk,
        "event": "closed",
        "years": 10,
        "end_of_following_year": False,
        "research_exception": False,
        "is_active": True,
    }
    change_request = services.request_rule_change(
        user=adam, rule=None, values=values, reason=REASON
    )
    assert not RetentionRule.objects.filter(organisation=police).exists()
    administration.approve(user=berit, request_id=change_request.pk)
    rule = RetentionRule.objects.get(organisation=police)
    assert (rule.programme, rule.years, rule.controller_id) == ("defector", 10, police.pk)
    assert AdminChangeRequest.objects.get(pk=change_request.pk).target_id == str(rule.pk)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"years": 0}, "mellan 1 och 100"),
        ({"years": 101}, "mellan 1 och 100"),
        ({"event": "opened"}, "räknas från"),
        ({"programme": "gvi"}, "program"),
        ({"organisation_kind": "school"}, "inte ändras"),
        ({}, "ändrar ingenting"),
    ],
)
def test_bad_rule_requests_get_a_swedish_error_and_record_nothing(demo, changes, message):
    rule = social_rule()
    with pytest.raises(ValidationError, match=message):
        services.request_rule_change(
            user=demo["adam.admin"], rule=rule, values=_values(rule, **changes), reason=REASON
        )
    assert not AdminChangeRequest.objects.exists()


def test_only_administrators_request_rule_changes(demo):
    rule = social_rule()
    assert policy.can_request_admin_change(demo["adam.admin"], "retention_rule")
    with pytest.raises(PermissionDenied):
        services.request_rule_change(
            user=demo["sara.samordnare"], rule=rule, values=_values(rule, years=6), reason=REASON
        )


def test_the_admin_pages_request_and_approve_a_rule(demo):
    rule = social_rule()
    adam = Client()
    adam.force_login(demo["adam.admin"])
    listing = adam.get("/admin/casework/retentionrule/")
    assert listing.status_code == 200 and b"begar-ny" in listing.content
    assert adam.get("/admin/casework/retentionrule/add/").status_code == 403
    page = adam.get(f"/admin/casework/retentionrule/{rule.pk}/begar-andring/")
    assert page.status_code == 200 and "Begär en ändring".encode() in page.content
    bad = adam.post(
        f"/admin/casework/retentionrule/{rule.pk}/begar-andring/",
        {**_form(rule), "years": "0", "reason": REASON},
    )
    assert bad.status_code == 400
    response = adam.post(
        f"/admin/casework/retentionrule/{rule.pk}/begar-andring/",
        {**_form(rule), "years": "6", "reason": REASON},
    )
    change_request = AdminChangeRequest.objects.get()
    assert response.status_code == 302
    berit = Client()
    berit.force_login(demo["berit.admin"])
    url = f"/admin/casework/adminchangerequest/{change_request.pk}/change/"
    page = berit.get(url)
    assert page.status_code == 200 and "5 → 6".encode() in page.content
    assert berit.post(url, {"decision": "approve", "reason": ""}).status_code == 302
    assert social_rule().years == 6


def _form(rule) -> dict:
    values = rule_values(rule)
    form = {name: "" if value is None else value for name, value in values.items()}
    for flag in ("end_of_following_year", "research_exception", "is_active"):
        if values[flag]:
            form[flag] = "on"
        else:
            form.pop(flag)
    return form


def test_the_auditors_search_offers_culling(demo):
    client = Client()
    client.force_login(demo["greta.granskare"])
    page = client.get("/granskning/")
    assert page.status_code == 200
    assert b'value="cull"' in page.content and b"Gallring" in page.content


def _history_values(case_id) -> list[tuple[str, str, str, bytes]]:
    """Every sealed value the change history holds of the case's rows (its own table and
    every case-owned table), as (table, column, row id, bytes)."""
    from audit.models import ChangeRecord
    from casework.services.case_reseal import case_sealed_tables

    found = []
    for table in case_sealed_tables():
        for record in ChangeRecord.objects.filter(table_name=table.table).iterator():
            if str(record.data.get(table.case_column)) != str(case_id):
                continue
            for column in table.columns:
                value = record.data.get(column)
                if value:  # bytea as JSON text: "\\x0123…"
                    found.append((table.table, column, record.row_id, bytes.fromhex(value[2:])))
    return found


def _openers() -> list:
    """Every key the key store holds, unwrapped."""
    from casework.crypto.keystore import load_keys

    owners: dict = {}
    for owner_type, owner_id in DataKey.objects.values_list("owner_type", "owner_id"):
        owners.setdefault(owner_type, []).append(owner_id)
    keys = load_keys(owners)
    return [key for by_owner in keys.values() for key in by_owner.values()]


def test_a_culled_case_keeps_nothing_readable_in_the_change_history_from_before_its_own_key(
    users,
):
    """A case whose values (and so the change history's copies of them) were under its
    person's key before keys per case: after the re-sealing and the cull, no key in the
    key store opens any copy of it; the person and their other case still read."""
    from casework.crypto.envelope import HEADER_LEN, Sealed, open_sealed
    from casework.crypto.errors import CryptoError
    from casework.crypto.keystore import PERSON_PREVIOUS, forget_data_keys
    from casework.crypto.records import open_value
    from casework.selectors.case_keys import case_key
    from casework.services.case_reseal import reseal_case_keys
    from tests.casework.test_case_keys import _back_to_person_key
    from tests.workflows.sig.factories import REASON as REFERRAL
    from workflows.sig.models import SigCase

    person = person_born(users)
    old = closed_case(users, person=person)
    other = sig_case(users, person=person)  # still open
    person_key = load_data_key(owner_type=PERSON, owner_id=person.pk)
    for case in (old, other):
        _back_to_person_key(case)  # as a database from before keys per case holds them
    legacy = [v for v in _history_values(old.pk) if v[3][:HEADER_LEN] == person_key.header]
    assert legacy  # the history holds copies under the person's key: not a vacuous check

    result = reseal_case_keys(purpose="Test av nycklar per ärende")
    assert result.cases == 2 and result.persons_rekeyed == 1
    # The person has a new key; the old one is kept as their previous key and still
    # opens their identity and the history from before (nothing is unreadable).
    assert DataKey.objects.get(owner_type=PERSON_PREVIOUS, owner_id=person.pk).id == person_key.id
    forget_data_keys()
    current = load_data_key(owner_type=PERSON, owner_id=person.pk)
    assert current.id != person_key.id
    assert open_value(Person.objects.get(pk=person.pk), "name", current) == PERSON_NAME
    table, column, row_id, blob = legacy[0]
    where = {"table": table, "column": column, "row_id": row_id}
    assert open_sealed(current, Sealed(blob), **where)

    result = services.cull(today=DUE_DAY)
    assert [d.case_id for d in result.culled] == [old.pk]
    forget_data_keys()

    history = _history_values(old.pk)
    assert len(history) > len(legacy)  # the re-sealing's and the cull's copies too
    keys = _openers()
    present = {key.id for key in keys}
    for table, column, row_id, blob in history:
        assert uuid_of(blob) not in present, (table, column)
        for key in keys:
            with pytest.raises(CryptoError):
                open_sealed(key, Sealed(blob), table=table, column=column, row_id=row_id)
    assert not DataKey.objects.filter(owner_type=PERSON_PREVIOUS, owner_id=person.pk).exists()
    # The person's identity moved to their current key and reads; so does the other case.
    fresh = Person.objects.get(pk=person.pk)
    assert fresh.erased_at is None and fresh.name.key_id == current.id
    assert open_value(fresh, "name", load_data_key(owner_type=PERSON, owner_id=person.pk)) == (
        PERSON_NAME
    )
    kept = SigCase.objects.get(pk=other.pk)
    assert open_value(kept, "referral_reason", case_key(kept)) == REFERRAL
    # Re-sealing and culling once more change nothing.
    assert services.cull(today=DUE_DAY).culled == []
    assert reseal_case_keys(purpose="Test av nycklar per ärende").cases == 0


def uuid_of(blob: bytes):
    import uuid

    return uuid.UUID(bytes=blob[1:17])


def test_many_access_log_events_are_one_statement_in_order(users):
    """A cull's batch writes its thousands of ``cull`` events in one statement (column
    arrays, not a VALUES list): every event as given, in order, chained."""
    import uuid

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audit.integrity import seal, verify
    from audit.services import Action, record_events

    persons = [uuid.uuid4() for _ in range(150)]
    with CaptureQueriesContext(connection) as queries:
        written = record_events(
            *(
                {
                    "action": Action.CULL,
                    "object_type": "casework.case",
                    "object_id": f"case-{i}",
                    "person_id": person,
                    "purpose": CULL_PURPOSE_TEXT,
                    "details": {"i": i, "rule": 1, "text": "gallrad\n"},
                }
                for i, person in enumerate(persons)
            )
        )
    assert len(queries) == 1
    events = list(AccessEvent.objects.filter(action="cull").order_by("id"))
    assert [e.pk for e in events] == [e.pk for e in written]
    assert [e.object_id for e in events] == [f"case-{i}" for i in range(150)]
    assert [e.person_id for e in events] == persons
    assert events[7].details == {"i": 7, "rule": 1, "text": "gallrad\n"}
    assert events[7].purpose == CULL_PURPOSE_TEXT and events[7].client_address is None
    seal()
    result = verify(directory=None)
    assert result.ok, result.finding


CULL_PURPOSE_TEXT = "Gallring enligt gallringsregel"
