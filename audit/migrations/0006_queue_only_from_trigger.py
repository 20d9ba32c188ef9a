"""The sealing queue cannot be jammed (issue 14, finding 7; ADR 0005 addendum).

- One row per entry (``audit_pending_one_per_entry``); duplicates left by the old
  schema are removed first.
- Only the log tables' trigger writes queue rows: ``audit_pending_guard`` refuses an
  INSERT that does not come from inside a trigger, whoever runs it, and
  ``audit_enqueue`` runs as its owner (SECURITY DEFINER), so production grants the
  application role no INSERT on the queue at all (README, "Production privileges").
- The trigger functions resolve table names in the schema they were installed in,
  never in a session's ``pg_temp``: a temporary table named like the queue or the
  change history can no longer take their rows.
"""

from django.db import migrations, models

DEDUPLICATE = """
DELETE FROM audit_pendingentry AS later
 USING audit_pendingentry AS earlier
 WHERE later.source = earlier.source
   AND later.entry_id = earlier.entry_id
   AND later.id > earlier.id;
"""

GUARD = r"""
CREATE OR REPLACE FUNCTION audit_pending_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- audit_enqueue() runs as a trigger of audit_accessevent / audit_changerecord,
    -- so its INSERT fires this at depth 2 or more; a statement of a session is depth 1.
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'audit_pendingentry is filled only by the trigger of the log tables: '
                        'a direct INSERT is not allowed'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Entries are queued for sealing when they are written to the log.';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_pending_guard BEFORE INSERT ON audit_pendingentry
    FOR EACH ROW EXECUTE FUNCTION audit_pending_guard();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS audit_pending_guard ON audit_pendingentry;
DROP FUNCTION IF EXISTS audit_pending_guard();
"""

# current_schema(): where migrate created the tables (ALTER ... SET needs a literal).
PIN_SEARCH_PATH = r"""
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION audit_enqueue() SECURITY DEFINER '
                   'SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION audit_record_change() SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION audit_record_truncate() SET search_path = %I, pg_temp',
                   current_schema());
END;
$$;
"""

UNPIN_SEARCH_PATH = """
ALTER FUNCTION audit_enqueue() SECURITY INVOKER RESET search_path;
ALTER FUNCTION audit_record_change() RESET search_path;
ALTER FUNCTION audit_record_truncate() RESET search_path;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0005_slimmer_event_indexes"),
    ]

    operations = [
        migrations.RunSQL(sql=DEDUPLICATE, reverse_sql=migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="pendingentry",
            constraint=models.UniqueConstraint(
                fields=("source", "entry_id"), name="audit_pending_one_per_entry"
            ),
        ),
        migrations.RunSQL(sql=GUARD, reverse_sql=UNGUARD),
        migrations.RunSQL(sql=PIN_SEARCH_PATH, reverse_sql=UNPIN_SEARCH_PATH),
    ]
