"""No plaintext personal data anywhere but in a selector's result.

A dump of both databases, the SQL sent to the server, the log, the access log:
none of them may contain a name, personnummer, address or phone number of a
registered person.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext
from psycopg import sql

from casework import selectors, services
from casework.management.commands.seed_demo import synthetic_persons
from casework.models import Person
from tests.casework.conftest import ANNA, BERTIL, BOTH_DATABASES, PURPOSE, persons_db

pytestmark = persons_db
ROOT = Path(__file__).resolve().parents[2]
SEEDED = 40


def _forms_of(number: str) -> list[str]:
    """A 12-digit number as people write it: 12 and 10 digits, with and without the dash."""
    return [number, f"{number[:8]}-{number[8:]}", number[2:], f"{number[2:8]}-{number[8:]}"]


def _secrets(persons: list[dict]) -> list[str]:
    values = []
    for person in persons:
        values += [person["name"], person["address"], *_forms_of(person["personnummer"])]
        values += [person["phone"]] if person.get("phone") else []
    return values


def _dump(alias: str) -> dict[str, bytes]:
    """Every table of a database, as ``COPY … TO STDOUT`` writes it (text format): the
    plain tables, the partitions of a partitioned table among them (the access log's
    months, ADR 0031), which hold its rows."""
    tables = {}
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "ORDER BY 1, 2"
        )
        for schema, table in cursor.fetchall():
            statement = sql.SQL("COPY {} TO STDOUT").format(sql.Identifier(schema, table))
            with cursor.cursor.copy(statement) as copy:
                tables[f"{alias}:{table}"] = b"".join(bytes(chunk) for chunk in copy)
    return tables


# A correction of the record (ADR 0027): the values before and after, and a guardian's.
CORRECTED = {"name": "Ottilia Rättelsedotter", "address": "Rättargränd 9", "phone": "070-174 06 99"}
GUARDIAN_VALUES = ["Vera Provsson", "070-174 06 98", "Gustava Nyvårdare", "070-174 06 97"]


def _correct_a_record(demo) -> list[str]:
    """A SIG case whose person's name, address and phone, and whose guardian's phone, are
    corrected and a guardian added: the old values go to the change history (sealed).
    Returns every value that was ever stored."""
    from casework.models import User
    from casework.services import person_corrections as corrections
    from tests.workflows.sig.factories import PERSON_NAME, sig_case
    from workflows.sig.models import Status

    users = {user.username: user for user in User.objects.all()}
    case = sig_case(users, Status.DECISION_PENDING)
    anna, reason = users["anna.social"], "Enligt folkbokföringen."
    corrections.correct_person(user=anna, case=case, purpose=PURPOSE, reason=reason, **CORRECTED)
    corrections.correct_guardian(
        user=anna,
        case=case,
        purpose=PURPOSE,
        reason=reason,
        guardian_id=case.person.guardians.get().pk,
        name=GUARDIAN_VALUES[0],
        phone=GUARDIAN_VALUES[1],
    )
    corrections.add_guardian(
        user=anna,
        case=case,
        purpose=PURPOSE,
        reason=reason,
        name=GUARDIAN_VALUES[2],
        phone=GUARDIAN_VALUES[3],
    )
    return [PERSON_NAME, "Provgatan 1", "070-174 06 11", *CORRECTED.values(), *GUARDIAN_VALUES]


@pytest.fixture
def populated(settings, worker, make_person, demo):
    settings.DEMO_PERSONS = SEEDED
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    seeded = synthetic_persons(SEEDED)
    anna = make_person()
    services.update_person(user=worker, purpose=PURPOSE, person_id=anna.pk, note="Ny anteckning")
    make_person({**BERTIL, "phone": "070-174 06 77"})
    corrected = _correct_a_record(demo)
    return [*seeded, ANNA, {**BERTIL, "phone": "070-174 06 77"}], corrected


def _normalised(persons):
    from casework import personnummer as pnr

    return [{**p, "personnummer": pnr.normalise(p["personnummer"])} for p in persons]


def test_a_dump_of_both_databases_holds_no_personal_data(populated, worker):
    registered, corrected = populated
    persons = _normalised(registered)
    dump = {}
    for alias in BOTH_DATABASES:
        dump.update(_dump(alias))
    # The dump is the real thing: every person row and every data key is in it.
    assert Person.objects.count() == SEEDED + 3
    person_rows = dump["default:casework_person"].count(b"\n")
    assert person_rows == SEEDED + 3
    # A key per person; the corrected record's case has one of its own.
    assert dump["keystore:casework_datakey"].count(b"\tcasework.person\t") == SEEDED + 3
    assert dump["keystore:casework_datakey"].count(b"\tcasework.case\t") >= 1
    # The access log's rows are in its month partitions (ADR 0031), every one of them.
    logged = sum(
        rows.count(b"\n")
        for name, rows in dump.items()
        if name.startswith("default:audit_accessevent")
    )
    assert logged > 0
    assert not any(name.startswith("keystore:casework_person") for name in dump)
    # …the change history too, with the corrections of the record in it.
    history = dump["default:audit_changerecord"]
    assert b"casework_person\t" in history and b"casework_guardian\t" in history
    assert history.count(b"\tUPDATE\t") >= 2
    everything = b"\n".join(dump.values())
    for value in [*_secrets(persons), "Ny anteckning", ANNA["note"], *corrected]:
        assert value.encode() not in everything, f"{value!r} is in the dump"
    # …and yet everything is there for the application with its keys.
    found = selectors.find_person(
        user=worker, purpose=PURPOSE, personnummer=persons[0]["personnummer"]
    )
    assert (
        selectors.get_person_details(user=worker, purpose=PURPOSE, person_id=found.pk).name
        == persons[0]["name"]
    )


def test_no_plaintext_in_sql_text_or_log_lines(worker, make_person, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    with (
        CaptureQueriesContext(connections["default"]) as default,
        CaptureQueriesContext(connections["keystore"]) as keystore,
    ):
        anna = make_person()
        selectors.get_person_details(user=worker, purpose=PURPOSE, person_id=anna.pk)
        selectors.find_person(user=worker, purpose=PURPOSE, personnummer="880320-0016")
        services.update_person(user=worker, purpose=PURPOSE, person_id=anna.pk, name="Nytt Namn")
        services.erase_person(user=None, purpose="Radering", person_id=anna.pk)
    statements = "\n".join(
        q["sql"] for q in [*default.captured_queries, *keystore.captured_queries]
    )
    assert "casework_person" in statements and "casework_datakey" in statements
    assert "django.db.backends" in caplog.text  # the SQL was logged, at DEBUG …
    for value in [*_secrets([{**ANNA, "personnummer": "198803200016"}]), "Nytt Namn"]:
        assert value not in statements, f"{value!r} was sent as SQL text"
        assert value not in caplog.text, f"{value!r} was logged"


def _uses_sealing(tree: ast.AST) -> bool:
    """Does the module import the sealing/opening functions, or call them via ``envelope.``?"""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = {alias.name for alias in node.names}
            if node.module == "casework.crypto.records":
                return True
            if node.module == "casework.crypto" and "records" in names:
                return True
            if node.module == "casework.crypto.envelope" and names & {"seal", "open_sealed"}:
                return True
        if (
            isinstance(node, ast.Attribute)
            and node.attr in {"seal", "open_sealed"}
            and isinstance(node.value, ast.Name)
            and node.value.id == "envelope"
        ):
            return True
    return False


def test_only_services_and_selectors_open_or_seal_values():
    """The core's services and selectors, and a programme's own services and selectors
    (``workflows/<programme>/services.py``, ``…/selectors.py``): nothing else."""
    allowed = {Path("casework/services"), Path("casework/selectors")}
    programme_layers = re.compile(
        r"workflows/[a-z]+/(services|selectors|meeting_services)(/[a-z_]+)?\.py"
    )
    users = set()
    for package in ("casework", "audit", "config", "workflows"):
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if relative.parts[:2] == ("casework", "crypto"):
                continue
            if _uses_sealing(ast.parse(path.read_text())):
                users.add(relative.parent if relative.parent in allowed else relative)
    outside = {p for p in users - allowed if not programme_layers.fullmatch(p.as_posix())}
    assert outside == set()
    assert allowed <= users
    assert Path("workflows/gvi/services/groups.py") in users  # the programmes' layers are scanned


def test_demo_persons_are_synthetic_valid_and_idempotent(settings, worker):
    from casework import personnummer as pnr

    settings.DEMO_PERSONS = 25
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Person.objects.count() == 25
    persons = synthetic_persons(25)
    for data in persons:
        number = pnr.normalise(data["personnummer"])
        assert pnr.is_coordination_number(number)
        assert 2001 <= pnr.birth_date(number).year <= 2015
        assert (
            data["name"]
            .split()[1]
            .startswith(("Prov", "Test", "Exempel", "Demo", "Fiktiv", "Låtsas", "Skiss", "Utkast"))
        )
        assert data["phone"].startswith("070-174 06 ")
    found = selectors.find_person(
        user=worker, purpose=PURPOSE, personnummer=persons[3]["personnummer"]
    )
    details = selectors.get_person_details(user=worker, purpose=PURPOSE, person_id=found.pk)
    assert details.name == persons[3]["name"]
    assert details.note.startswith("Syntetisk demoperson")
    assert {p.area for p in Person.objects.all()} >= {"vivalla_baronbackarna", "other"}
