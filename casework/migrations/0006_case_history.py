"""Change history of the shared case tables (database triggers, see audit/history.py).

Encrypted columns hold ciphertext only, so the history does too; ``version``
is left out (it changes with every write and carries no information).
"""

from django.db import migrations

from audit.history import track_changes

TABLES = [
    ("casework_case", ["version"]),
    ("casework_casemembership", []),
    ("casework_guardian", []),
    ("casework_consent", []),
    ("casework_consent_organisations", []),
    ("casework_caselegalbasis", []),
    ("casework_casedecision", []),
    ("casework_action", []),
    ("casework_breakglassaccess", []),
    ("casework_legalbasis", []),
]


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_database_protection"),
        ("casework", "0005_case_roles_and_legal_bases"),
    ]

    operations = [track_changes(table, exclude=exclude) for table, exclude in TABLES]
