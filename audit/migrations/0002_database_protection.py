"""Database-side rules of the audit records (see docs/adr/0005-audit-log.md).

- The access log, the change history and the hash chain are append-only:
  UPDATE, DELETE and TRUNCATE raise, whoever runs them (only disabling the
  trigger, which needs the table owner or a superuser, gets past it — and the
  hash chain and the signed checkpoints then show it).
- Every committed entry is queued for sealing into the hash chain.
- ``audit_record_change`` / ``audit_record_truncate`` are the trigger functions
  behind the change history (``audit.history.track_changes``).
"""

from django.db import migrations

APPEND_ONLY_TABLES = ("audit_accessevent", "audit_changerecord", "audit_chainlink")

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Entries of the access log and the change history are never changed or removed.';
END;
$$;

CREATE OR REPLACE FUNCTION audit_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_pendingentry (source, entry_id) VALUES (TG_ARGV[0], NEW.id);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION audit_change_context() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    raw text := current_setting('samverkan.audit_context', true);
BEGIN
    IF raw IS NULL OR raw = '' THEN
        RETURN NULL;
    END IF;
    RETURN raw::jsonb;
EXCEPTION WHEN others THEN
    RETURN jsonb_build_object('unparsed', left(raw, 500));
END;
$$;

-- TG_ARGV[0] is the primary-key column, the rest are columns never copied.
CREATE OR REPLACE FUNCTION audit_record_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    pk_column text := TG_ARGV[0];
    excluded text[] := TG_ARGV[1:];
    row_data jsonb;
    old_data jsonb;
    changed jsonb := '[]'::jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_data := to_jsonb(OLD) - excluded;
    ELSE
        row_data := to_jsonb(NEW) - excluded;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        old_data := to_jsonb(OLD) - excluded;
        IF old_data = row_data THEN
            RETURN NULL;
        END IF;
        SELECT coalesce(jsonb_agg(n.key ORDER BY n.key), '[]'::jsonb) INTO changed
          FROM jsonb_each(row_data) AS n
         WHERE n.value IS DISTINCT FROM old_data -> n.key;
    END IF;
    INSERT INTO audit_changerecord
        (occurred_at, table_name, row_id, operation, data, changed_fields, context, db_role)
    VALUES
        (clock_timestamp(), TG_TABLE_NAME, coalesce(row_data ->> pk_column, ''), TG_OP,
         row_data, changed, audit_change_context(), session_user::text);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION audit_record_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_changerecord
        (occurred_at, table_name, row_id, operation, data, changed_fields, context, db_role)
    VALUES
        (clock_timestamp(), TG_TABLE_NAME, '', 'TRUNCATE', '{}'::jsonb, '[]'::jsonb,
         audit_change_context(), session_user::text);
    RETURN NULL;
END;
$$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS audit_record_truncate();
DROP FUNCTION IF EXISTS audit_record_change();
DROP FUNCTION IF EXISTS audit_change_context();
DROP FUNCTION IF EXISTS audit_enqueue();
DROP FUNCTION IF EXISTS audit_refuse_change();
"""


def _append_only(table):
    return migrations.RunSQL(
        sql=[
            f"CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();",
            f"CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();",
        ],
        reverse_sql=[
            f"DROP TRIGGER IF EXISTS audit_append_only ON {table};",
            f"DROP TRIGGER IF EXISTS audit_append_only_truncate ON {table};",
        ],
    )


def _enqueue(table, source):
    return migrations.RunSQL(
        sql=f"CREATE TRIGGER audit_enqueue AFTER INSERT ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION audit_enqueue('{source}');",
        reverse_sql=f"DROP TRIGGER IF EXISTS audit_enqueue ON {table};",
    )


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunSQL(sql=FUNCTIONS, reverse_sql=DROP_FUNCTIONS),
        *(_append_only(table) for table in APPEND_ONLY_TABLES),
        _enqueue("audit_accessevent", "access"),
        _enqueue("audit_changerecord", "history"),
    ]
