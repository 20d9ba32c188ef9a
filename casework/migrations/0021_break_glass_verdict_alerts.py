"""Break-the-glass reviews with a verdict, written once; alerts as reminders, one per recipient.

A review, once written, is never changed: the trigger below refuses any UPDATE that
touches the review's columns of a reviewed access (whoever runs it; the check constraint
refuses the breaker as reviewer). Reminders become unique per recipient too, so an alert
reaches each auditor or coordinator once a day (NULLS NOT DISTINCT: a queue's reminder,
without a recipient, stays once a day).
"""

from django.db import migrations, models

REVIEW_WRITTEN_ONCE = r"""
CREATE OR REPLACE FUNCTION casework_refuse_review_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the review of break-the-glass access % is written once', OLD.id
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'A break-the-glass review is never changed.';
END;
$$;

CREATE TRIGGER break_glass_review_once
BEFORE UPDATE ON casework_breakglassaccess
FOR EACH ROW
WHEN (
    OLD.reviewed_at IS NOT NULL
    AND (NEW.reviewed_at, NEW.reviewed_by_id, NEW.verdict, NEW.review_note)
        IS DISTINCT FROM (OLD.reviewed_at, OLD.reviewed_by_id, OLD.verdict, OLD.review_note)
)
EXECUTE FUNCTION casework_refuse_review_change();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("casework", "0020_access_generation"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="reminder",
            name="reminder_once_per_day",
        ),
        migrations.AddField(
            model_name="breakglassaccess",
            name="verdict",
            field=models.CharField(
                blank=True,
                choices=[("justified", "Justified"), ("not_justified", "Not justified")],
                max_length=20,
                verbose_name="verdict",
            ),
        ),
        migrations.AddField(
            model_name="user",
            name="alert_new_tasks",
            field=models.BooleanField(
                default=False,
                help_text=(
                    "A reminder in the app and, where e-mail is set up, an e-mail without "
                    "case data when a task is given to you."
                ),
                verbose_name="alert me about new tasks",
            ),
        ),
        migrations.AlterField(
            model_name="breakglassaccess",
            name="review_note",
            field=models.TextField(blank=True, verbose_name="comment"),
        ),
        migrations.AlterField(
            model_name="reminder",
            name="kind",
            field=models.CharField(
                choices=[
                    ("review_overdue", "Review date passed"),
                    ("task_overdue", "Task waiting too long"),
                    ("break_glass_unreviewed", "Break-the-glass access not reviewed"),
                    ("reassessment_overdue", "Threat reassessment overdue"),
                    ("gvi_follow_up_overdue", "GVI follow-up overdue"),
                    ("gvi_referral_overdue", "GVI referral not taken up in time"),
                    ("break_glass_opened", "Break-the-glass access opened"),
                    ("lowering_awaits_approval", "Lowered threat level awaits approval"),
                    ("task_assigned", "New task for you"),
                ],
                max_length=30,
                verbose_name="kind",
            ),
        ),
        migrations.AddIndex(
            model_name="breakglassaccess",
            index=models.Index(
                condition=models.Q(("reviewed_at__isnull", True)),
                fields=["opened_at"],
                name="break_glass_unreviewed",
            ),
        ),
        migrations.AddConstraint(
            model_name="breakglassaccess",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("reviewed_by__isnull", True),
                    models.Q(("reviewed_by", models.F("user")), _negated=True),
                    _connector="OR",
                ),
                name="break_glass_reviewer_not_breaker",
            ),
        ),
        migrations.AddConstraint(
            model_name="breakglassaccess",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("reviewed_at__isnull", True),
                        ("reviewed_by__isnull", True),
                        ("verdict", ""),
                    ),
                    models.Q(("reviewed_at__isnull", False), ("reviewed_by__isnull", False)),
                    _connector="OR",
                ),
                name="break_glass_review_whole",
            ),
        ),
        migrations.AddConstraint(
            model_name="reminder",
            constraint=models.UniqueConstraint(
                fields=("kind", "object_id", "date", "recipient"),
                name="reminder_once_per_day",
                nulls_distinct=False,
            ),
        ),
        migrations.RunSQL(
            sql=REVIEW_WRITTEN_ONCE,
            reverse_sql="""
            DROP TRIGGER IF EXISTS break_glass_review_once ON casework_breakglassaccess;
            DROP FUNCTION IF EXISTS casework_refuse_review_change();
            """,
        ),
    ]
