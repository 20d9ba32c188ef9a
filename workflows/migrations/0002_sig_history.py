"""Change history of SIG cases (the programme table; its parent is tracked by casework)."""

from django.db import migrations

from audit.history import track_changes


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_database_protection"),
        ("workflows", "0001_initial"),
    ]

    operations = [track_changes("workflows_sigcase", pk="case_ptr_id")]
