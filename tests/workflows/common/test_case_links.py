"""Linked cases: one programme's case refers the person to another, visible on both."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from audit.models import AccessEvent
from casework.models import Case, CaseEvent, CaseLink
from casework.services import cases as services
from casework.services.cases import CaseDenied
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import PURPOSE, make_person, sig_case
from workflows.sig.flow import SigFlow
from workflows.sig.models import SigCase, SigProcess, Status
from workflows.sig.services import refer_linked

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

REASON = "Behöver mer stöd än programmet ger."


def _screen_task(case):
    process = SigProcess.objects.get(case=case)
    return process.task_set.get(flow_task=SigFlow.screen)


def test_linked_referral_opens_a_case_in_the_screening_queue_linked_both_ways(users):
    source = sig_case(users, Status.ACTIVE)
    anna = users["anna.social"]

    linked = refer_linked(
        user=anna,
        from_case=source,
        kind=CaseLink.Kind.ESCALATED,
        reason=REASON,
        purpose=PURPOSE,
    )

    assert linked.status == Status.REFERRED and linked.person_id == source.person_id
    assert _screen_task(linked).status == "NEW"  # the coordinators' queue
    link = CaseLink.objects.get()
    assert (link.from_case_id, link.to_case_id) == (source.pk, linked.pk)
    assert link.reason != REASON  # sealed
    assert CaseEvent.objects.filter(case=source, kind=CaseEvent.Kind.LINK).count() == 1
    assert CaseEvent.objects.filter(case=linked, kind=CaseEvent.Kind.LINK).count() == 1
    assert AccessEvent.objects.filter(
        action="create", object_type="casework.caselink", object_id=str(link.pk)
    ).exists()


def test_both_case_pages_show_the_link_and_its_reason(users, client):
    source = sig_case(users, Status.ACTIVE)
    anna = users["anna.social"]
    linked = refer_linked(
        user=anna, from_case=source, kind=CaseLink.Kind.ESCALATED, reason=REASON, purpose=PURPOSE
    )
    # The referral gave anna no place on the new case's team (ADR 0012): the coordinator
    # sees both pages, anna the one she is on the team of.
    for username, case, other in (
        ("anna.social", source, linked),
        ("sara.samordnare", source, linked),
        ("sara.samordnare", linked, source),
    ):
        client.force_login(users[username])
        html = client.get(f"/arenden/fall/{case.pk}/").content.decode()
        assert other.reference in html
        assert REASON in html
    client.force_login(anna)
    assert client.get(f"/arenden/fall/{linked.pk}/").status_code == 404


def test_a_person_outside_the_sig_age_range_is_refused_and_nothing_is_written(users):
    source = sig_case(users, Status.REFERRED, years=30)
    before = (SigCase.objects.count(), CaseLink.objects.count())
    with pytest.raises(ValidationError):
        refer_linked(
            user=users["anna.social"],
            from_case=source,
            kind=CaseLink.Kind.ESCALATED,
            reason=REASON,
            purpose=PURPOSE,
        )
    assert (SigCase.objects.count(), CaseLink.objects.count()) == before


def _escalate(user, source, target, *, kind=CaseLink.Kind.ESCALATED, reason=REASON):
    """``user`` links ``source`` to ``target`` (by default as escalated to it)."""
    return services.link_cases(
        user=user, from_case=source, to_case=target, kind=kind, reason=reason, purpose=PURPOSE
    )


def test_a_user_without_access_to_the_source_case_cannot_link_and_nothing_is_written(users):
    source = sig_case(users, Status.ACTIVE)
    outsider = users["lisa.skola"]
    other = sig_case(users, Status.REFERRED, person=source.person)
    with pytest.raises(CaseDenied):
        _escalate(outsider, source, other)
    assert not CaseLink.objects.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("other_person", "same person"),
        ("self", "itself"),
        ("kind", "kind"),
        ("reason", ""),
    ],
)
def test_bad_links_are_refused(users, change, message):
    anna = users["anna.social"]
    source = sig_case(users, Status.ACTIVE)
    if change == "other_person":
        target = sig_case(users, Status.REFERRED, person=make_person(user=anna))
    elif change == "self":
        target = source
    else:
        target = sig_case(users, Status.REFERRED, person=source.person)
    with pytest.raises(ValidationError):
        _escalate(
            anna,
            source,
            target,
            kind="nonsense" if change == "kind" else CaseLink.Kind.ESCALATED,
            reason="" if change == "reason" else REASON,
        )
    assert not CaseLink.objects.exists()


def test_the_case_page_of_an_unknown_case_is_404_and_needs_a_case_role(users, client):
    import uuid

    client.force_login(users["anna.social"])
    assert client.get(f"/arenden/fall/{uuid.uuid4()}/").status_code == 404
    case = sig_case(users, Status.REFERRED)
    client.force_login(users["stig.styrgrupp"])
    assert client.get(f"/arenden/fall/{case.pk}/").status_code == 403
    assert Case.objects.filter(pk=case.pk).exists()
