"""What every programme's demo data (``seed_demo``) is built with: the demo slots and
their synthetic persons, the flow's steps run as the task views run them, and the
:class:`Builder` a programme's demo case is taken through its steps with.

A step is run the way its view runs it: a queue task is claimed first (the "assign"
button), then started under the flow's lock in one transaction with
``activation.start(request)``; the caller does the step's service calls and calls
``activation.execute()`` when the step finishes the task.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from casework import personnummer as pnr
from casework.models import Action, Case, Consent, Person, User
from casework.services import cases as case_services
from casework.services import create_person

# The programmes' demos run their steps with these (``demo.open_task``, ``demo.task_step``).
from workflows.common.nodes import StepRequest, review_time, task_step
from workflows.common.nodes import open_task as open_task

# The namespace of the demo persons' ids (uuid5 of the slot's key): a person is created
# once, however often ``seed_demo`` runs.
DEMO_NAMESPACE = uuid.UUID("6f1d2c1e-8a8c-4e0e-9a51-5a6d656d6f51")
# What the demo persons are registered with (the access log's purpose, the person's note).
PERSON_PURPOSE = "Demodata: SIG-ärenden (seed_demo)"
PERSON_NOTE = "Syntetisk demoperson (SIG-demoärende): påhittade uppgifter."


@dataclass(frozen=True)
class Slot:
    """One demo case: who it is about, who referred it and how far it goes."""

    key: str
    age: int
    target: str  # how far the demo takes the case (a step or a state of its programme)
    guardians: int = 0
    referrer: str = "anna.social"
    area: str = Person.Area.VIVALLA_BARONBACKARNA
    protected_identity: int = Person.ProtectedIdentity.NONE
    options: dict = field(default_factory=dict)


def person_id(slot: Slot, namespace: uuid.UUID = DEMO_NAMESPACE) -> uuid.UUID:
    return uuid.uuid5(namespace, slot.key)


def new_slots(slots: list, person_id=person_id) -> list[tuple[int, Slot]]:
    """The slots (with their index) whose person is not registered yet: the cases
    ``seed_demo`` still has to build."""
    ids = [person_id(slot) for slot in slots]
    existing = set(Person.objects.filter(pk__in=ids).values_list("pk", flat=True))
    return [(index, slot) for index, slot in enumerate(slots) if ids[index] not in existing]


def surname(slot: Slot) -> str:
    from casework.management.commands.seed_demo import SURNAME_ENDINGS, SURNAME_STEMS

    code = sum(map(ord, slot.key))
    return SURNAME_STEMS[code % len(SURNAME_STEMS)] + SURNAME_ENDINGS[code % len(SURNAME_ENDINGS)]


def guardian_name(slot: Slot, number: int) -> str:
    from casework.management.commands.seed_demo import FIRST_NAMES

    first = FIRST_NAMES[(sum(map(ord, slot.key)) + 7 * number) % len(FIRST_NAMES)]
    return f"{first} {surname(slot)}"


def person(
    slot: Slot,
    index: int,
    *,
    namespace: uuid.UUID = DEMO_NAMESPACE,
    purpose: str = PERSON_PURPOSE,
    note: str = PERSON_NOTE,
) -> Person:
    """Register the slot's synthetic person (a samordningsnummer of the right age), its id
    keyed on the slot in ``namespace``."""
    from casework.management.commands.seed_demo import FIRST_NAMES, STREETS

    today = timezone.localdate()
    born = today.replace(year=today.year - slot.age, day=1) - datetime.timedelta(
        days=30 + 11 * index
    )
    name = f"{FIRST_NAMES[(index * 5) % len(FIRST_NAMES)]} {surname(slot)}"
    for step in range(1000):
        serial = (900 + index * 5 + step) % 1000
        ten = pnr.with_check_digit(f"{born:%y%m}{born.day + 60:02d}{serial:03d}")
        try:
            return create_person(
                user=None,
                purpose=purpose,
                person_id=person_id(slot, namespace),
                name=name,
                personnummer=f"{born:%Y}"[:2] + ten,
                area=slot.area,
                protected_identity=slot.protected_identity,
                address=f"{STREETS[index % len(STREETS)]} {index + 3}, Örebro",
                phone=f"070-174 06 {10 + index:02d}",
                note=note,
            )
        except ValidationError as error:
            # The number is taken by another synthetic person: try the next serial.
            if "personnummer" not in getattr(error, "error_dict", {}):
                raise
    raise RuntimeError("no free synthetic number for a demo person")


def steps_to(main: list[str], branches: dict[str, list[str]], target: str) -> list[str]:
    """The steps a demo case takes to ``target``: a branch's own list, or the main line up
    to and including ``target``."""
    if target in branches:
        return branches[target]
    return main[: main.index(target) + 1]


@contextmanager
def start_step(node, user: User) -> Iterator:
    """Run the flow's start view as ``user``, in one transaction: yields the started
    activation; the caller opens the case and sets ``activation.process.case``, and the
    start task is executed when the block ends."""
    activation = node.activation_class.create(node, None, None)
    if not node.can_execute(user, activation.task):
        raise PermissionDenied
    with transaction.atomic():
        activation.start(StepRequest(user))
        yield activation
        activation.execute()


def fire_timer(timer, due) -> None:
    """Fire the timer task ``timer`` now, as ``send_reminders`` fires a due timer, with its
    due moment recomputed by ``due(activation)`` (the case's date was moved)."""
    with timer.activation() as activation:
        timer.scheduled = due(activation)
        timer.save(update_fields=["scheduled"])
        activation.start()
        activation.execute()


def case_task(process_model, case, node):
    """The open task of ``node`` in the case's running process (a ``process_model`` row)
    of ``node``'s flow."""
    process = process_model.objects.filter(case=case, flow_class=node.flow_class).get(
        finished__isnull=True
    )
    return open_task(process, node)


def fire_review_timer(case: Case, timer, *, days_ago: int = 0) -> None:
    """Demo time travel: the case's review date ``days_ago`` days back (today by default);
    then its flow's review timer ``timer`` (the open ``wait_for_review`` task) fires.

    ``update_case`` refuses a review date in the past (rightly), so the date is moved
    directly; the change history records it. The timer then fires as ``send_reminders``
    fires a due timer, due on the morning of the moved date (``review_time``).
    """
    review = timezone.localdate() - datetime.timedelta(days=days_ago)
    Case.objects.filter(pk=case.pk).update(review_date=review)
    case.review_date = review
    fire_timer(timer, review_time)


class Builder:
    """Takes one demo case (``case``) through its steps, the methods ``step_<name>``, as the
    demo users (``users``, by username): the lead social worker, the police contact
    officer and the coordinator are ``LEAD``, ``POLICE`` and ``COORDINATOR``."""

    LEAD = "anna.social"
    POLICE = "per.polis"
    COORDINATOR = "sara.samordnare"
    purpose = PERSON_PURPOSE
    # The programme's process model: its rows are the case's processes (``open_task``).
    process_model: type | None = None

    def __init__(self, users: dict[str, User], person: Person) -> None:
        self.users = users
        self.person = person
        self.case = None

    @property
    def lead(self) -> User:
        return self.users[self.LEAD]

    @property
    def police(self) -> User:
        return self.users[self.POLICE]

    @property
    def coordinator(self) -> User:
        return self.users[self.COORDINATOR]

    def take_step(self, name: str) -> None:
        getattr(self, f"step_{name}")()

    def open_task(self, node):
        """The case's open task of ``node`` (:func:`case_task`)."""
        return case_task(self.process_model, self.case, node)

    @contextmanager
    def task(self, node, user: User) -> Iterator:
        """One POST of ``node``'s task view on the case as ``user`` (:func:`task_step`)."""
        with task_step(self.open_task(node), node, user) as activation:
            yield activation

    def do(
        self, node, user: User, service, *, finish: bool = False, versioned: bool = False, **kwargs
    ) -> None:
        """``node``'s task as ``user``: ``service`` on its case (with ``kwargs``; ``versioned``:
        and the case version seen, as a form posts it); ``finish`` executes the task."""
        with self.task(node, user) as activation:
            case = activation.process.case
            if versioned:
                kwargs["expected_version"] = case.version
            service(user=user, case=case, purpose=self.purpose, **kwargs)
            if finish:
                activation.execute()

    def begin(self, node, user: User, name: str) -> None:
        """``node``'s begin button as ``user``: the case's transition ``name``, with the case
        version seen (as the step's page posts it)."""
        self.do(node, user, case_services.transition, versioned=True, name=name)

    def give_consents(self, user: User, case, givers, organisations, **kwargs) -> None:
        """Written consents of ``givers`` ((giver, guardian) pairs) covering ``organisations``."""
        for giver, guardian in givers:
            case_services.record_consent(
                user=user,
                case=case,
                purpose=self.purpose,
                giver=giver,
                guardian=guardian,
                decision=Consent.Decision.GIVEN,
                form=Consent.Form.WRITTEN,
                organisations=organisations,
                **kwargs,
            )

    def plan_actions(self, user: User, case, actions, *, service=None, versioned=False) -> None:
        """The plan's actions a week ahead, each ``(organisation, kind, note)``, added with
        ``service`` (``add_action``; ``versioned``: with the case version, as a form posts it)."""
        service = service or case_services.add_action
        for organisation, kind, note in actions:
            seen = {"expected_version": case.version} if versioned else {}
            service(
                user=user,
                case=case,
                purpose=self.purpose,
                kind=kind,
                status=Action.Status.PLANNED,
                date=timezone.localdate() + datetime.timedelta(days=7),
                organisation=organisation,
                note=note,
                **seen,
            )

    def _transition(self, user, case, name, **kwargs):
        return case_services.transition(
            user=user, case=case, name=name, purpose=self.purpose, **kwargs
        )
