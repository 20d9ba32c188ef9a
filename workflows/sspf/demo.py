"""Demo SSPF cases in every state, a meeting and anonymised discussions (``seed_demo``).

The cases are synthetic persons aged 11-17 (see ``workflows/sig/demo.py`` for how they are
made), each raised by the school or leisure demo user and taken by the coordinator as far
as its slot says. As in ``workflows/sig/demo.py``, every case is driven through its flow
the way the task views drive it: the flow's start creates the process, each task is
claimed from the coordinators' queue (the "assign" button) or taken from its owner's
inbox, started under the flow's lock, the step's services change the case, and
``activation.execute()`` finishes the task. So every open case has its process and its
open task in the right queue or inbox — the coordinator's step, and from the plan on the
school's and the leisure centre's parts in lisa.skola's and fredrik.fritid's inboxes.

Keyed on the person, each case built in one transaction: running ``seed_demo`` again adds
nothing. The one shortcut is time, as for SIG: the follow-up date is moved to today and
the follow-up timer fired as ``send_reminders`` would fire it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.utils import timezone

from casework.models import Action, Case, CaseMembership, Consent, Organisation, Person, User
from casework.services import cases as case_services
from workflows.common import demo
from workflows.common.demo import Slot
from workflows.common.demo import person as _person
from workflows.common.demo import person_id as person_id  # the tests key on it
from workflows.sspf import meeting_services
from workflows.sspf import services as sspf_services
from workflows.sspf.flow import SspfFlow
from workflows.sspf.models import AnonymisedDiscussion, SspfCase, SspfProcess, Status

PURPOSE = "Demodata: SSPF-ärenden (seed_demo)"
COORDINATOR = "sara.samordnare"
SCHOOL = "lisa.skola"
LEISURE = "fredrik.fritid"

SLOTS = [
    Slot("sspf-concern", 13, Status.CONCERN_RAISED, guardians=1, referrer=SCHOOL),
    Slot("sspf-assessment", 12, Status.ASSESSMENT, guardians=1, referrer=LEISURE),
    Slot("sspf-consent", 16, Status.CONSENT_PENDING, guardians=2, referrer=SCHOOL),
    Slot("sspf-mapping", 14, Status.MAPPING, guardians=1, referrer=SCHOOL),
    Slot("sspf-network", 15, Status.NETWORK_MEETING, guardians=1, referrer=LEISURE),
    Slot("sspf-plan", 13, Status.PLAN_ACTIVE, guardians=2, referrer=SCHOOL),
    Slot("sspf-follow-up", 17, Status.FOLLOW_UP, guardians=1, referrer=SCHOOL),
    Slot("sspf-closed", 11, Status.CLOSED, guardians=1, referrer=LEISURE),
]
ORDER = [
    Status.CONCERN_RAISED,
    Status.ASSESSMENT,
    Status.CONSENT_PENDING,
    Status.MAPPING,
    Status.NETWORK_MEETING,
    Status.PLAN_ACTIVE,
    Status.FOLLOW_UP,
    Status.CLOSED,
]
# The open human tasks of a demo case in each state (flow node names), and who has each:
# a username, or None for the coordinators' queue. What ``seed_demo`` promises.
OPEN_TASKS = {
    Status.CONCERN_RAISED: {"assess": None},
    Status.ASSESSMENT: {"assess": COORDINATOR},
    Status.CONSENT_PENDING: {"consent": COORDINATOR},
    Status.MAPPING: {"mapping": None},
    Status.NETWORK_MEETING: {"network_meeting": None},
    Status.PLAN_ACTIVE: {"school_part": SCHOOL, "leisure_part": LEISURE},
    # The school has reported for this period; the leisure centre's report is still open.
    Status.FOLLOW_UP: {"follow_up": COORDINATOR, "leisure_part": LEISURE},
    Status.CLOSED: {},
}


@contextmanager
def task_step(case: SspfCase, node, user: User) -> Iterator:
    """One POST of ``node``'s task view as ``user`` (``workflows.common.demo.task_step``)."""
    with demo.task_step(demo.case_task(SspfProcess, case, node), node, user) as activation:
        yield activation


def start_case(*, user: User, person: Person, concern: str) -> SspfCase:
    """The concern: the flow's start view, as ``ConcernView.post`` runs it."""
    with demo.start_step(SspfFlow.start, user) as activation:
        case = sspf_services.raise_concern(
            user=user, person=person, concern=concern, purpose=PURPOSE
        )
        activation.process.case = case
    return case


def fire_follow_up_timer(case: SspfCase) -> None:
    """Demo time travel: the follow-up date is today; fire the follow-up timer."""
    demo.fire_review_timer(case, demo.case_task(SspfProcess, case, SspfFlow.wait_for_review))


class _Builder(demo.Builder):
    """Takes one demo case through its steps, as the task views would."""

    purpose = PURPOSE

    def __init__(self, slot: Slot, users: dict[str, User], person: Person) -> None:
        super().__init__(users, person)
        self.slot = slot
        self.sara = users[COORDINATOR]
        self.today = timezone.localdate()
        self.reach = ORDER.index(slot.target)

    def _run(self, case, name, **kwargs):
        case_services.transition(user=self.sara, case=case, name=name, purpose=PURPOSE, **kwargs)

    def build(self) -> SspfCase:
        case = start_case(
            user=self.users[self.slot.referrer],
            person=self.person,
            concern="Syntetiskt demoärende: hög frånvaro, sena kvällar och äldre umgänge.",
        )
        # Each step, and the state the case must be headed for (at least) to take it.
        for needed, step in (
            (Status.ASSESSMENT, self.begin_assessment),
            (Status.CONSENT_PENDING, self.assess),
            (Status.CONSENT_PENDING, self.consents),
            (Status.NETWORK_MEETING, self.mapping),
            (Status.PLAN_ACTIVE, self.network_meeting),
            (Status.FOLLOW_UP, self.follow_up),
            (Status.CLOSED, self.close),
        ):
            if self.reach < ORDER.index(needed):
                break
            step(case)
        return SspfCase.objects.get(pk=case.pk)

    def begin_assessment(self, case) -> None:
        with task_step(case, SspfFlow.assess, self.sara) as activation:
            self._run(activation.process.case, "begin_assessment")

    def assess(self, case) -> None:
        # Raising the concern put nobody on the team (ADR 0012): the assessment puts the
        # school and the leisure centre on it, the one who raised the concern included.
        with task_step(case, SspfFlow.assess, self.sara) as activation:
            case = activation.process.case
            sspf_services.record_risk_assessment(
                user=self.sara,
                case=case,
                purpose=PURPOSE,
                level="moderate",
                risk_factors="Skolfrånvaro och sena kvällar.",
                protective_factors="Engagerade vårdnadshavare; tycker om fotboll.",
            )
            for username, role in (
                (SCHOOL, CaseMembership.Role.SCHOOL),
                (LEISURE, CaseMembership.Role.LEISURE),
            ):
                sspf_services.add_sspf_member(
                    user=self.sara,
                    case=case,
                    purpose=PURPOSE,
                    member=self.users[username],
                    role=role,
                )
            self._run(case, "request_consent")
            activation.execute()

    def consents(self, case) -> None:
        """Guardians registered; all written consents (only the first guardian's, in the
        case that waits for consent), then "consents complete"."""
        with task_step(case, SspfFlow.consent, self.sara) as activation:
            case = activation.process.case
            guardians = [
                case_services.add_guardian(
                    user=self.sara,
                    case=case,
                    purpose=PURPOSE,
                    name=f"Vårdnadshavare {number + 1}",
                    phone=None,
                )
                for number in range(self.slot.guardians)
            ]
            waiting = self.slot.target == Status.CONSENT_PENDING
            parties = [
                case.owner_organisation,
                self.users[SCHOOL].organisation,
                self.users[LEISURE].organisation,
            ]
            givers = [(Consent.Giver.GUARDIAN, g) for g in guardians[: 1 if waiting else None]]
            if not waiting:
                givers.append((Consent.Giver.SELF, None))
            self.give_consents(
                self.sara,
                case,
                givers,
                parties,
                valid_until=self.today + datetime.timedelta(days=365),
            )
            if waiting:
                return
            self._run(case, "consents_given")
            activation.execute()

    def mapping(self, case) -> None:
        with task_step(case, SspfFlow.mapping, self.sara) as activation:
            case = activation.process.case
            sspf_services.record_mapping(
                user=self.sara,
                case=case,
                purpose=PURPOSE,
                held_on=self.today,
                note="Familjen vill ha stöd kring skolgång och fritid.",
            )
            self._run(case, "mapping_done")
            activation.execute()

    def network_meeting(self, case) -> None:
        with task_step(case, SspfFlow.network_meeting, self.sara) as activation:
            case = activation.process.case
            self.plan_actions(
                self.sara,
                case,
                [
                    (
                        self.users[SCHOOL].organisation,
                        Action.Kind.SCHOOL_SUPPORT,
                        "Mentorssamtal varje vecka.",
                    ),
                    (
                        self.users[LEISURE].organisation,
                        Action.Kind.LEISURE_ACTIVITY,
                        "Plats i fotbollsgruppen på tisdagar.",
                    ),
                ],
                service=sspf_services.add_sspf_action,
            )
            sspf_services.adopt_plan(
                user=self.sara,
                case=case,
                purpose=PURPOSE,
                goals="Mål: närvaro i skolan och en aktiv fritid.",
                review_date=self.today + datetime.timedelta(days=42),
            )
            activation.execute()

    def follow_up(self, case) -> None:
        """The school reports its part; the follow-up date comes; the meeting begins."""
        lisa = self.users[SCHOOL]
        with task_step(case, SspfFlow.school_part, lisa) as activation:
            sspf_services.report_plan_part(
                user=lisa,
                case=activation.process.case,
                purpose=PURPOSE,
                note="Närvaron har ökat sedan mentorssamtalen började.",
            )
            activation.execute()
        fire_follow_up_timer(case)
        with task_step(case, SspfFlow.follow_up, self.sara) as activation:
            self._run(activation.process.case, "begin_follow_up")

    def close(self, case) -> None:
        """The follow-up meeting closes the case: the goals are met."""
        with task_step(case, SspfFlow.follow_up, self.sara) as activation:
            case_services.close_case(
                user=self.sara,
                case=activation.process.case,
                purpose=PURPOSE,
                reason=Case.CloseReason.GOALS_MET,
                note="Målen i planen är uppnådda.",
            )
            activation.execute()


def build_case(slot: Slot, users: dict[str, User], *, index: int) -> SspfCase:
    return _Builder(slot, users, _person(slot, index)).build()


def seed_sspf_cases() -> int:
    """Create the SSPF demo cases, a meeting and anonymised discussions not there yet."""
    users = {
        u.username: u for u in User.objects.filter(username__in=[COORDINATOR, SCHOOL, LEISURE])
    }
    created = []
    for index, slot in demo.new_slots(SLOTS):
        with transaction.atomic():
            created.append(build_case(slot, users, index=40 + index))
    if created and not AnonymisedDiscussion.objects.exists():
        sara = users[COORDINATOR]
        with transaction.atomic():
            meeting = meeting_services.create_meeting(
                user=sara,
                purpose=PURPOSE,
                date=timezone.localdate(),
                organisations=Organisation.objects.exclude(kind=Organisation.Kind.OTHER),
            )
            for case in created:
                if case.status in (Status.PLAN_ACTIVE, Status.FOLLOW_UP):
                    item = meeting_services.add_to_agenda(
                        user=sara, meeting=meeting, case=case, purpose=PURPOSE
                    )
                    meeting_services.record_agenda_decision(
                        user=sara,
                        item=item,
                        decision="Planen följs; ny uppföljning om sex veckor.",
                        purpose=PURPOSE,
                    )
            for organisation, topic, band, area, text in (
                (
                    users[SCHOOL].organisation,
                    "absence",
                    "13-15",
                    "vivalla_baronbackarna",
                    "Elev i åk 8 med ökande frånvaro; vårdnadshavarna vill inte samtycka ännu.",
                ),
                (
                    users[LEISURE].organisation,
                    "company",
                    "16-18",
                    "brickebacken",
                    "Ungdom som ses med äldre på kvällarna vid fritidsgården.",
                ),
            ):
                meeting_services.record_anonymised_discussion(
                    user=sara,
                    purpose=PURPOSE,
                    meeting=meeting,
                    date=timezone.localdate(),
                    organisation=organisation,
                    topic=topic,
                    age_band=band,
                    area=area,
                    summary=text,
                    outcome="Skolan och fritidsgården bjuder in familjen till samtal.",
                )
    return len(created)
