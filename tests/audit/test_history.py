"""Change history by database triggers: no write path can bypass it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from audit.models import ChangeRecord
from casework.models import Organisation, User

from .helpers import raw


def _history(table: str, row_id) -> list[ChangeRecord]:
    return list(ChangeRecord.objects.filter(table_name=table, row_id=str(row_id)).order_by("id"))


def test_save_update_and_delete_are_recorded(db):
    organisation = Organisation.objects.create(name="Navets skola", kind="school")
    organisation.name = "Navets skola F-9"
    organisation.save()
    pk = organisation.pk
    organisation.delete()
    history = _history("casework_organisation", pk)
    assert [h.operation for h in history] == ["INSERT", "UPDATE", "DELETE"]
    assert history[1].changed_fields == ["name"]
    assert history[1].data["name"] == "Navets skola F-9"
    assert history[2].data["name"] == "Navets skola F-9"
    assert history[0].db_role == connection.settings_dict["USER"]


def test_queryset_update_bulk_operations_and_raw_sql_cannot_bypass_it(db):
    created = Organisation.objects.bulk_create(
        [Organisation(name=f"Skola {n}", kind="school") for n in range(3)]
    )
    Organisation.objects.filter(name__startswith="Skola").update(is_active=False)
    for organisation in created:
        organisation.kind = "leisure"
    Organisation.objects.bulk_update(created, ["kind"])
    target = created[0].pk
    raw("UPDATE casework_organisation SET name = 'Rå SQL' WHERE id = %s", [target])
    raw("DELETE FROM casework_organisation WHERE id = %s", [target])
    raw("INSERT INTO casework_organisation (name, kind, is_active) VALUES ('Ny', 'other', true)")

    operations = [h.operation for h in _history("casework_organisation", target)]
    assert operations == ["INSERT", "UPDATE", "UPDATE", "UPDATE", "DELETE"]
    raw_update = _history("casework_organisation", target)[3]
    assert raw_update.data["name"] == "Rå SQL"
    assert raw_update.changed_fields == ["name"]
    assert ChangeRecord.objects.filter(
        table_name="casework_organisation", operation="INSERT", data__name="Ny"
    ).exists()


def test_truncate_is_recorded_too(db):
    user = User.objects.create_user("trunkerad")
    user.groups.add(Group.objects.get(name="skola"))
    raw("SET CONSTRAINTS ALL IMMEDIATE")
    raw("TRUNCATE casework_user_groups")
    assert ChangeRecord.objects.filter(
        table_name="casework_user_groups", operation="TRUNCATE"
    ).exists()


def test_tables_the_access_log_refers_to_cannot_be_truncated_at_all(db):
    """TRUNCATE ... CASCADE of accounts would empty the log: the log's trigger refuses."""
    from django.db import ProgrammingError, transaction

    from audit.services import record_event

    user = User.objects.create_user("loggad")
    record_event(action="login", user=user)
    raw("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        raw("TRUNCATE casework_organisation CASCADE")
    assert User.objects.filter(pk=user.pk).exists()


def test_passwords_and_last_login_never_reach_the_history(db):
    user = User.objects.create_user("ny.anvandare", password="hemligt-lösen-123")
    user.set_password("ett-annat-lösen-456")
    user.save()
    from django.contrib.auth.models import update_last_login

    update_last_login(None, user)
    history = _history("casework_user", user.pk)
    assert [h.operation for h in history] == ["INSERT"]  # the password/login updates are silent
    assert "password" not in history[0].data
    assert "last_login" not in history[0].data
    assert history[0].data["username"] == "ny.anvandare"
    dump = str(list(ChangeRecord.objects.values_list("data", flat=True)))
    assert "pbkdf2" not in dump and "md5$" not in dump


def test_role_grants_are_in_the_history(db):
    user = User.objects.create_user("roll.test")
    group = Group.objects.get(name="kontaktpolis")
    user.groups.add(group)
    raw(
        "DELETE FROM casework_user_groups WHERE user_id = %s AND group_id = %s",
        [user.pk, group.pk],
    )
    history = ChangeRecord.objects.filter(table_name="casework_user_groups").order_by("id")
    assert [(h.operation, h.data["user_id"], h.data["group_id"]) for h in history] == [
        ("INSERT", user.pk, group.pk),
        ("DELETE", user.pk, group.pk),
    ]


def test_changes_in_a_request_carry_the_acting_user_and_request_id(demo, client):
    admin = demo["adam.admin"]
    target = demo["lisa.skola"]
    client.force_login(admin)
    response = client.post(
        f"/admin/casework/user/{target.pk}/change/",
        {
            "username": target.username,
            "first_name": "Lisa",
            "last_name": "Skolsköterska",
            "email": target.email,
            "organisation": target.organisation_id,
            "groups": [g.pk for g in target.groups.all()],
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
        headers={"X-Request-ID": "req-history-0001"},
    )
    assert response.status_code == 302, response.content[:2000]
    change = _history("casework_user", target.pk)[-1]
    assert change.operation == "UPDATE"
    assert change.changed_fields == ["last_name"]
    assert change.context == {
        "request_id": "req-history-0001",
        "user_id": admin.pk,
        "username": "adam.admin",
    }


def test_changes_outside_requests_have_no_context(db):
    organisation = Organisation.objects.create(name="Kommandot", kind="other")
    assert _history("casework_organisation", organisation.pk)[0].context is None


@pytest.mark.parametrize(
    "table", ["casework_organisation", "casework_user", "casework_user_groups"]
)
def test_tracked_tables_have_the_history_triggers(db, table):
    names = {
        row[0]
        for row in raw(
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relname = %s AND NOT t.tgisinternal",
            [table],
        )
    }
    assert {"audit_history", "audit_history_truncate"} <= names


def test_track_changes_refuses_anything_but_plain_identifiers():
    from audit.history import track_changes

    with pytest.raises(ValueError, match="identifier"):
        track_changes("casework_person; DROP TABLE x")
    with pytest.raises(ValueError, match="identifier"):
        track_changes("casework_person", exclude=["a'b"])
