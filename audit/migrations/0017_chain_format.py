"""Chain format 2 (ADR 0031, session 19): every link records how it was hashed.

Existing links are format 1 (the column's default, metadata only: PostgreSQL adds a
column with a constant default without rewriting the table or firing its triggers);
the sealer writes format 2 from now on.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0016_bulk_reseal_by_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="chainlink",
            name="format",
            field=models.PositiveSmallIntegerField(
                db_default=1, default=1, verbose_name="chain format"
            ),
        ),
    ]
