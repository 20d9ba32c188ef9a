"""Chain format 3 (ADR 0031, session 22): one row per sealed block of entries.

Additive: a new table, append-only like the chain's links (the triggers of 0002), with an
index on each block's highest entry id by source (the sealer's check that an entry is not
chained twice; the ids are kept in ascending order).
"""

import django.contrib.postgres.fields
from django.db import migrations, models

TABLE = "audit_chainblock"


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0017_chain_format"),
    ]

    operations = [
        migrations.CreateModel(
            name="ChainBlock",
            fields=[
                (
                    "first_position",
                    models.BigIntegerField(
                        primary_key=True, serialize=False, verbose_name="first position"
                    ),
                ),
                (
                    "last_position",
                    models.BigIntegerField(unique=True, verbose_name="last position"),
                ),
                (
                    "source",
                    models.CharField(
                        choices=[("access", "access event"), ("history", "change record")],
                        max_length=10,
                        verbose_name="source",
                    ),
                ),
                (
                    "entry_ids",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(), size=None, verbose_name="entry ids"
                    ),
                ),
                ("entry_digests", models.BinaryField(verbose_name="entry digests")),
                ("chain_hash", models.CharField(max_length=64, verbose_name="chain hash")),
                ("sealed_at", models.DateTimeField(verbose_name="sealed at (UTC)")),
            ],
            options={
                "verbose_name": "chain block",
                "verbose_name_plural": "chain blocks",
                "ordering": ["first_position"],
                "default_permissions": (),
            },
        ),
        migrations.RunSQL(
            sql=[
                f"CREATE INDEX audit_chainblock_highest_id ON {TABLE} "
                "(source, (entry_ids[cardinality(entry_ids)]))",
                f"CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
                "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();",
                f"CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON {TABLE} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();",
            ],
            reverse_sql=[
                f"DROP TRIGGER IF EXISTS audit_append_only_truncate ON {TABLE};",
                f"DROP TRIGGER IF EXISTS audit_append_only ON {TABLE};",
                "DROP INDEX IF EXISTS audit_chainblock_highest_id;",
            ],
        ),
    ]
