"""Change history of persons: ciphertext only, and never the personnummer's blind index.

The encrypted columns hold sealed values, so the history holds ciphertext only;
after erasure the person's data key is destroyed and every historical copy is
unreadable with it. The blind index is left out: it is a keyed hash of the
personnummer, and a copy kept in the history would let anyone with the index
key tell that an erased personnummer was once registered.
"""

from django.db import migrations

from audit.history import track_changes


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_track_accounts"),
        ("casework", "0003_person_datakey"),
    ]

    operations = [track_changes("casework_person", exclude=["personnummer_index"])]
