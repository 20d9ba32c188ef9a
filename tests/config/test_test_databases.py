"""The test databases between tests: as the migrations left them, whatever a committing
test committed (tests/conftest.py, docs/adr/0034-fast-suite.md)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType

from audit.models import ChangeRecord
from casework.models import LegalBasis
from tests.conftest import COMMITTED_DB, empty_committed

pytestmark = COMMITTED_DB


def _migrations_rows() -> dict:
    return {
        "roles": sorted(Group.objects.values_list("id", "name")),
        "role permissions": sorted(
            Group.permissions.through.objects.values_list("group_id", "permission_id")
        ),
        "content types": sorted(ContentType.objects.values_list("id", "app_label", "model")),
        "legal bases": sorted(LegalBasis.objects.values_list("id", "name")),
    }


@pytest.mark.parametrize("run", [1, 2])
def test_a_committing_test_starts_and_ends_on_the_migrations_rows(run):
    """Run twice: the second run starts after the first one's flush and restore."""
    before = _migrations_rows()
    assert before["roles"] and before["role permissions"] and before["legal bases"]
    assert not ChangeRecord.objects.exists()

    Group.objects.get(name=before["roles"][0][1]).permissions.clear()
    Group.objects.create(name="En roll som testet gör")
    LegalBasis.objects.all().delete()

    empty_committed()  # the flush and restore of a committing test's end

    assert _migrations_rows() == before
    assert not ChangeRecord.objects.exists()
    # The ids go on past the restored rows (the flush did not reset the sequences).
    made = Group.objects.create(name="En roll efter återställningen")
    assert made.id > max(id_ for id_, _ in before["roles"])
