"""Change history of organisations, user accounts and their roles (never password hashes)."""

from django.db import migrations

from audit.history import track_changes


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_database_protection"),
        ("casework", "0001_initial"),
    ]

    operations = [
        track_changes("casework_organisation"),
        track_changes("casework_user", exclude=["password", "last_login"]),
        # Role membership (Django groups): granting a role is a change to answer for.
        track_changes("casework_user_groups"),
    ]
