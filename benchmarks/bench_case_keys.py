"""Keys per case: re-sealing existing case data from the person's key to the case's own.

10 000 SIG cases of 5 000 persons (two each), as a database from before keys per case
holds them: every sealed value under the person's data key, ``keyed_at`` empty. Each
case: the referral reason, the screening note and the plan (``workflows_sigcase``),
four timeline entries of which two with a reason, two actions with a note — seven
sealed values in eight rows, six of them in two tables under the change history
(``casework_caseevent`` is not). Bulk-loaded with ``COPY``; then ``reseal_case_keys`` (batches of
1 000, two at a time in worker processes with their own connections — ``BENCH_WORKERS``
— each: the persons re-keyed and the case keys made and committed in the key store, one
transaction of locks, re-sealing, one statement with one change record per table and
the access-log event). Besides the rate it reports CPU per case (this process and its
worker processes, the database sessions) and round trips of this process
(``benchmarks.measure``; the workers' are not counted): the machine is shared.
``BENCH_RESEAL_CASES`` for a smaller run.
"""

from __future__ import annotations

import os
import uuid

from django.core.management import call_command
from django.utils import timezone

from benchmarks.bench_crypto import _analyze, _copy_rows
from benchmarks.measure import Measured

CASES = int(os.environ.get("BENCH_RESEAL_CASES", "10000"))
CASES_PER_PERSON = 2
BATCH = 1_000
# Batches at a time, each in a process with its own connection (``reseal_case_keys
# --workers``): one more than the cores, so that one batch's Python work runs while another
# waits for the database (README; ADR 0023, session 15).
WORKERS = int(os.environ.get("BENCH_WORKERS", str((os.cpu_count() or 1) + 1)))


def run(report) -> None:
    from audit.services import seal_now
    from casework.services.case_reseal import reseal_case_keys

    total = _load_legacy_cases()
    # The load's own change records (every COPY'd row of a tracked table) are chained
    # first: their sealing is the setup's, not the re-seal's (whose records are sealed
    # inside the window).
    seal_now()
    before = os.times()
    with Measured() as measured:
        result = reseal_case_keys(
            purpose="Benchmark: nycklar per ärende", batch_size=BATCH, workers=WORKERS
        )
    after = os.times()
    # The worker processes' CPU (ended and waited for inside the block) is the re-seal's.
    workers_cpu = (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )
    measured.cpu += workers_cpu
    elapsed = measured.wall
    assert result.cases == total and result.remaining == 0, result
    report("re-seal to per-case keys", total / elapsed, "cases/s", ">= 5000 cases/s (2 cores)")
    report("re-seal: values re-sealed", result.values / elapsed, "values/s", "")
    report("re-seal: persons given a new key", result.persons_rekeyed, "persons", "")
    report("re-seal: cases per process CPU second", total / max(measured.cpu, 1e-9), "cases/s", "")
    report("re-seal: worker processes' CPU per case", 1000 * workers_cpu / total, "ms", "")
    measured.report(report, "re-seal", total, "case", batches=result.batches)


def _load_legacy_cases() -> int:
    from casework.crypto import envelope
    from casework.crypto.keystore import PERSON, current_keyring
    from casework.models import Action, Case, CaseEvent, Organisation, User

    call_command("seed_demo", persons=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    user = User.objects.get(username="anna.social")
    organisation = Organisation.objects.get(pk=user.organisation_id)
    keyring, now, today = current_keyring(), timezone.now(), timezone.localdate()
    persons, keys, cases, sig, events, actions = [], [], [], [], [], []
    for p in range(CASES // CASES_PER_PERSON):
        person_id = uuid.uuid4()
        key_id, key = envelope.new_data_key()
        version, wrapped = envelope.wrap_data_key(
            keyring, key_id=key_id, owner_type=PERSON, owner_id=person_id, key=key
        )
        keys.append((key_id, PERSON, person_id, version, wrapped, now))
        dek = envelope.DataKeyMaterial(key_id, key)
        sealed = envelope.seal(
            dek, b"Benchmark Provsson", table="casework_person", column="name", row_id=person_id
        )
        persons.append((person_id, sealed.blob, 2008, "unknown", "other", 0, now))
        for c in range(CASES_PER_PERSON):
            case_id = uuid.uuid4()
            cases.append(
                (
                    case_id,
                    f"BENCH-{p:05d}-{c}",
                    "sig",
                    person_id,
                    organisation.pk,
                    user.pk,
                    organisation.pk,
                    now,
                    "",
                    1,
                )
            )

            def text(table, column, row_id, value, dek=dek):
                where = {"table": table, "column": column, "row_id": row_id}
                return envelope.seal(dek, value.encode(), **where).blob

            sig.append(
                (
                    case_id,
                    "active",
                    *tuple(
                        text("workflows_sigcase", column, case_id, f"{column}: benchmarktext " * 8)
                        for column in ("referral_reason", "screening_note", "plan")
                    ),
                )
            )
            for e in range(4):
                event_id = uuid.uuid4()
                reason = (
                    text("casework_caseevent", "reason", event_id, "Skäl " * 10) if e % 2 else None
                )
                events.append(
                    (event_id, case_id, now, CaseEvent.Kind.TRANSITION, "", "", "", reason)
                )
            for _ in range(2):
                action_id = uuid.uuid4()
                note = text("casework_action", "note", action_id, "Insatsanteckning " * 6)
                actions.append(
                    (
                        action_id,
                        case_id,
                        organisation.pk,
                        user.pk,
                        Action.Kind.SUPPORT_TALKS,
                        Action.Status.PLANNED,
                        today,
                        note,
                        Action.Visibility.TEAM,
                        now,
                    )
                )
    _copy_rows(
        "keystore",
        "casework_datakey",
        ["id", "owner_type", "owner_id", "kek_version", "wrapped_key", "created_at"],
        keys,
    )
    _copy_rows(
        "default",
        "casework_person",
        ["id", "name", "birth_year", "gender", "area", "protected_identity", "created_at"],
        persons,
    )
    _copy_rows(
        "default",
        "casework_case",
        [
            "id",
            "reference",
            "programme",
            "person_id",
            "owner_organisation_id",
            "referred_by_id",
            "referring_organisation_id",
            "opened_at",
            "close_reason",
            "version",
        ],
        cases,
    )
    _copy_rows(
        "default",
        "workflows_sigcase",
        ["case_ptr_id", "status", "referral_reason", "screening_note", "plan"],
        sig,
    )
    _copy_rows(
        "default",
        "casework_caseevent",
        ["id", "case_id", "at", "kind", "transition", "from_state", "to_state", "reason"],
        events,
    )
    _copy_rows(
        "default",
        "casework_action",
        [
            "id",
            "case_id",
            "organisation_id",
            "actor_id",
            "kind",
            "status",
            "date",
            "note",
            "visibility",
            "created_at",
        ],
        actions,
    )
    for alias, table in (
        ("keystore", "casework_datakey"),
        ("default", "casework_case"),
        ("default", "workflows_sigcase"),
        ("default", "casework_caseevent"),
        ("default", "casework_action"),
    ):
        _analyze(alias, table)
    assert Case.objects.filter(keyed_at__isnull=True).count() >= CASES
    return Case.objects.filter(keyed_at__isnull=True).count()
