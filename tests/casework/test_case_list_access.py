"""The case list decides every case's access from one reading of the user's seats
(``policy.known_reach``): the same answer, ground by ground, as ``case_access`` asked
case by case, and a number of statements that does not grow with the cases."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from casework import policy
from casework.models import Organisation, Person, User
from casework.selectors import case_reads
from casework.selectors.cases import CaseRow, case_row_texts, list_cases, status_label
from casework.services import absences
from casework.services import cases as case_services
from casework.services.case_changes import CaseDenied
from tests.casework.test_case_list_rows import _LOOP
from tests.workflows.conftest import BOTH_DATABASES
from workflows.defector.models import DefectorCase, DefectorSupportCase
from workflows.sig.models import SigCase
from workflows.sig.views import review_overdue
from workflows.sspf.models import SspfCase

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


@pytest.fixture
def seeded(demo_cases):
    """The demo with every programme's cases, committed once for the module
    (``tests.conftest.committed_demo_cases``)."""
    return demo_cases


def _one_by_one(user) -> list[tuple[object, str]]:
    """The case list as ``case_access`` gives it, a case at a time."""
    reach = policy.cases_in_reach(user).values("pk")
    cases = SigCase.objects.filter(pk__in=reach).select_related("person", "owner_organisation")
    answers = [(case, policy.case_access(user, case)) for case in cases.order_by("-opened_at")]
    return [(case.pk, access.via) for case, access in answers if access]


def _listed(user) -> list[tuple[object, str]]:
    return [(row.case.pk, row.via) for row in list_cases(user=user, model=SigCase)]


def test_every_ground_as_case_by_case(seeded):
    anna, ebba = seeded["anna.social"], seeded["sara.samordnare"]
    cases = list(SigCase.objects.order_by("opened_at"))
    assert len(cases) >= 3
    # A colleague of anna's organisation with her roles stands in for her today.
    deputy = User.objects.create(username="dora.deputy", organisation=anna.organisation)
    deputy.groups.set(anna.groups.all())
    absences.name_deputy(
        user=anna, deputy=deputy, starts_on=timezone.localdate(), ends_on=timezone.localdate()
    )
    # Someone who may break the glass holds such an access to a case outside their team.
    opened = None
    for breaker in (User.objects.get(pk=u.pk) for u in seeded.values()):
        if not policy.can_break_glass(breaker):
            continue
        for case in cases:
            if policy.case_access(breaker, case):
                continue
            try:
                opened = case_services.break_glass(
                    user=breaker, case=case, reason="Akut hot, test av listan."
                )
            except CaseDenied:
                continue
            break
        if opened is not None:
            break
    assert opened is not None
    users = [*seeded.values(), deputy]
    grounds = set()
    for user in users:
        user = User.objects.get(pk=user.pk)  # fresh permission caches
        expected = _one_by_one(user)
        assert _listed(user) == expected, user.username
        grounds |= {via for _case, via in expected}
    assert {"team", "coordinator", "deputy", "break_glass", policy.CLOSED_LEAD} <= grounds
    assert ebba.username == "sara.samordnare"


def test_a_closed_case_lead_within_the_window_only(seeded, settings):
    """The demo's closed cases are read by their lead within the documentation window
    (``closed_lead``); with no window, by nobody — the list agrees with the policy."""
    anna = User.objects.get(pk=seeded["anna.social"].pk)
    listed = dict(_listed(anna))
    assert policy.CLOSED_LEAD in listed.values()
    assert listed == dict(_one_by_one(anna))
    settings.SAMVERKAN = {**settings.SAMVERKAN, "CLOSED_CASE_LEAD_READ_DAYS": 0}
    after = dict(_listed(anna))
    assert policy.CLOSED_LEAD not in after.values()
    assert set(after) < set(listed)
    assert after == dict(_one_by_one(anna))


def test_statements_do_not_grow_with_the_cases(seeded, django_assert_max_num_queries):
    """The coordinator's list (every SIG case) and a team member's: the absences (read
    once for the reach and the seats), the cases query, the user's seats and accesses
    (one statement) and the absent members' seats — not four a case."""
    sara = User.objects.get(username="sara.samordnare")
    anna = User.objects.get(username="anna.social")
    assert len(_one_by_one(sara)) >= 5
    for user in (sara, anna):
        with django_assert_max_num_queries(6):
            list_cases(user=user, model=SigCase)


def test_status_labels_as_get_status_display(seeded, client):
    """The lists' status labels (translated once a model and language) are the model's
    own ``get_status_display()`` in every language, and the case list shows them."""
    cases = list(SigCase.objects.all())
    assert len({case.status for case in cases}) > 1
    for case in cases:
        for language in ("sv", "en"):
            with translation.override(language):
                assert status_label(case) == case.get_status_display()
    odd = SigCase(status="no-such-state")
    assert status_label(odd) == odd.get_status_display() == "no-such-state"
    sara = seeded["sara.samordnare"]
    client.force_login(sara)
    page = client.get("/arenden/fall/").content.decode()
    with translation.override("sv"):
        for row in list_cases(user=User.objects.get(pk=sara.pk), model=SigCase):
            assert row.case.get_status_display() in page


def _rows_as_before(user, model) -> list[CaseRow]:
    """The list as it was read before session 18 (docs/adr/0036-fast-pages.md): the
    cases with their person and owner joined, each decided by ``case_access`` on its
    own."""
    reach = policy.cases_in_reach(user).values("pk")
    cases = (
        model.objects.filter(pk__in=reach)
        .select_related("person", "owner_organisation")
        .order_by("-opened_at")[: case_reads.LISTED]
    )
    answers = [(case, policy.case_access(user, case)) for case in cases]
    return [CaseRow(case=case, via=access.via) for case, access in answers if access]


def _shown(rows: list[CaseRow]) -> list[tuple]:
    return [
        (
            *(row.case.pk, row.case.reference, row.case.status, row.case.culled_at, row.via),
            *(row.status_label, row.opened_on, row.review_on, row.via_label),
        )
        for row in rows
    ]


@pytest.mark.parametrize("model", [SigCase, SspfCase, DefectorCase, DefectorSupportCase])
@pytest.mark.parametrize("language", ["sv", "en"])
def test_every_demo_users_list_is_the_case_by_case_list(seeded, model, language):
    """Every demo user's list of every programme: the same cases, grounds and texts as
    the cases read with their parties and decided one by one; the texts made for all the
    rows at once are each row's own."""
    users = 0
    with translation.override(language):
        for user in seeded.values():
            user = User.objects.get(pk=user.pk)
            if not policy.can_use_task_inbox(user):
                continue
            users += 1
            listed = list_cases(user=user, model=model)
            assert _shown(listed) == _shown(_rows_as_before(user, model)), user.username
            assert case_row_texts(listed) == [
                (row.status_label, row.opened_on, row.review_on, row.via_label) for row in listed
            ]
    assert users >= 7


def test_every_demo_users_case_list_page_has_the_loops_rows(seeded, client):
    """The SIG case list page of every demo user who may open it holds exactly the rows the
    template's loop wrote (session 17) over the case-by-case list."""
    pages = 0
    for user in seeded.values():
        user = User.objects.get(pk=user.pk)
        client.force_login(user)
        response = client.get("/arenden/fall/")
        if not policy.can_use_task_inbox(user):
            assert response.status_code in (302, 403)
            continue
        assert response.status_code == 200
        rows = _rows_as_before(user, SigCase)
        overdue = {row.case.pk for row in rows if review_overdue(row.case)}
        with translation.override("sv"):
            expected = Template(_LOOP).render(Context({"rows": rows, "overdue": overdue}))
        page = response.content.decode()
        assert page.count("<tr") == (len(rows) + 1 if rows else 0), user.username
        if rows:
            pages += 1
            assert expected in page, user.username
    assert pages >= 3


def test_the_cases_of_the_users_own_organisation_come_without_their_parties(seeded):
    """The coordinator's and a team member's lists (social services: all their cases their
    organisation's) read no person and no organisation; a police officer's (every case
    another organisation's) has them joined to the cases, as before."""
    person, organisation = Person._meta.db_table, Organisation._meta.db_table

    def statements_of(user) -> list[str]:
        with CaptureQueriesContext(connection) as statements:
            rows = list_cases(user=user, model=SigCase)
        assert rows, user.username
        # A read prepared earlier on the connection is only executed: its text is its
        # PREPARE in the query that prepared it (the session's prepared statements keep
        # the whole query, the reads run with it included; ``compiled.run_together``).
        sqls = [query["sql"] for query in statements.captured_queries]
        names = {name for sql in sqls for name in re.findall(r"EXECUTE (\w+)", sql)}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, statement FROM pg_prepared_statements WHERE name = ANY(%s)",
                [list(names)],
            )
            prepared = [
                next(part for part in query.split(";\n") if f"PREPARE {name} " in part)
                for name, query in cursor.fetchall()
            ]
        assert len(prepared) == len(names)
        return sqls + prepared

    # The request's user comes with its organisation (``casework.auth``).
    users = User.objects.select_related("organisation")
    for username in ("sara.samordnare", "anna.social"):
        read = statements_of(users.get(username=username))
        assert not any(f'"{person}"' in sql or f'"{organisation}"' in sql for sql in read)
    police = statements_of(users.get(username="per.polis"))
    assert not any(f'FROM "{person}"' in sql for sql in police)
    assert any(f'JOIN "{person}"' in sql and f'JOIN "{organisation}"' in sql for sql in police)
    # The one organisation read of its own: the consents' organisations.
    assert sum(f'FROM "{organisation}"' in sql for sql in police) == 1


def test_the_case_list_s_reads_are_prepared_once_a_database_session(seeded, client):
    """The absences with the cases in reach, and the user's seats on them: prepared with
    their first use on the connection, only executed after (ADR 0036, session 22); the
    same rows either way."""
    client.force_login(seeded["sara.samordnare"])
    first = client.get("/arenden/fall/")
    with CaptureQueriesContext(connection) as queries:
        again = client.get("/arenden/fall/")
    assert first.status_code == again.status_code == 200
    assert [row.case.pk for row in first.context["rows"]] == [
        row.case.pk for row in again.context["rows"]
    ]
    assert first.context["rows"]
    sqls = [query["sql"] for query in queries.captured_queries]
    assert not any("PREPARE" in sql for sql in sqls)
    # Beside the session's read, every statement is an execution of a prepared read: the
    # absences with the reach, the seats, the menu's counts.
    reads = [sql for sql in sqls if "django_session" not in sql]
    assert len(reads) >= 3, [sql[:80] for sql in sqls]
    assert all(sql.lstrip().startswith("EXECUTE samverkan_read_") for sql in reads), [
        sql[:80] for sql in reads
    ]
