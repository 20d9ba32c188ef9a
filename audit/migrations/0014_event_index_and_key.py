"""Cheaper appends to the access log (docs/adr/0031-partitioned-access-log.md, session 14).

- The period's index (``occurred_at``) becomes a BRIN index with ``autosummarize``: the
  log is appended in time order, so a block range's minimum and maximum narrow a period's
  search and review as the B-tree did, while an insert into the newest, not yet
  summarised range writes nothing to the index (the B-tree took an entry, and its WAL,
  per event). PostgreSQL builds it on every partition, and on every partition made later.
- The event's account (``user_id``) keeps no foreign-key constraint in the database
  (``db_constraint=False``): its deferred check read and key-share-locked the account's
  row at every event's commit. Accounts are never deleted (the model's ``PROTECT``; no
  delete right for administrators), the username is kept beside the id, and the chain
  seals the id as written.
"""

import django.contrib.postgres.indexes
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0013_bulk_reseal"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="accessevent",
            name="occurred_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now, verbose_name="time (UTC)"
            ),
        ),
        migrations.AlterField(
            model_name="accessevent",
            name="user",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="user",
            ),
        ),
        migrations.AddIndex(
            model_name="accessevent",
            index=django.contrib.postgres.indexes.BrinIndex(
                autosummarize=True, fields=["occurred_at"], name="audit_event_occurred_brin"
            ),
        ),
    ]
