"""The outcomes of the log review's findings: append-only at the database, like the access log
(the trigger function ``audit_refuse_change`` of 0002 raises on UPDATE, DELETE, TRUNCATE)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0006_queue_only_from_trigger"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="FindingOutcome",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("rule", models.CharField(max_length=40, verbose_name="rule")),
                ("key", models.CharField(max_length=300, verbose_name="finding")),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("reviewed", "Reviewed, no action"),
                            ("needs_action", "Needs action"),
                            ("referred_dpo", "Referred to the data protection officer"),
                        ],
                        max_length=20,
                        verbose_name="outcome",
                    ),
                ),
                ("period_start", models.DateTimeField(verbose_name="review period from")),
                ("period_end", models.DateTimeField(verbose_name="review period to")),
                ("seed", models.BigIntegerField(blank=True, null=True, verbose_name="sample seed")),
                (
                    "reviewed_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="reviewed at (UTC)"
                    ),
                ),
                (
                    "event",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="audit.accessevent",
                        verbose_name="access event",
                    ),
                ),
                (
                    "reviewed_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="reviewer",
                    ),
                ),
            ],
            options={
                "verbose_name": "finding outcome",
                "verbose_name_plural": "finding outcomes",
                "ordering": ["id"],
                "default_permissions": (),
                "constraints": [
                    models.UniqueConstraint(
                        fields=("rule", "key"), name="audit_finding_one_outcome"
                    )
                ],
            },
        ),
        migrations.RunSQL(
            sql=[
                "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit_findingoutcome "
                "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();",
                "CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON audit_findingoutcome "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();",
            ],
            reverse_sql=[
                "DROP TRIGGER IF EXISTS audit_append_only ON audit_findingoutcome;",
                "DROP TRIGGER IF EXISTS audit_append_only_truncate ON audit_findingoutcome;",
            ],
        ),
    ]
