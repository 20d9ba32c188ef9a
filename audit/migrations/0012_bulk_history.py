"""A bulk path of the change history (ADR 0005, "The bulk path"; ADR 0023, session 12).

``audit_bulk_update(table, ids, columns, values)`` updates the given columns of many
rows of a tracked table in one statement and writes their change records in the same
statement, paired old/new by primary key: the records the row trigger would have
written (same data, changed fields, context, role), queued for the hash chain in one
``INSERT``. While it runs, the row trigger of that table and the queue's row trigger of
its records stand aside — only there:

- the function sets the transaction-local ``samverkan.audit_bulk`` to the table's name
  for its one statement (and clears it after); a failed statement rolls the setting back
  with the transaction or savepoint;
- the triggers stand aside only for that table's rows and records, only when that
  setting names the table **and** the current
  role is the audit owner (the role that ran this migration and owns the function). A
  session can set any custom setting, but only the owner's ``SECURITY DEFINER``
  function runs as the owner for the application role (production: the application role
  is not the owner and cannot become it), and this function writes the records itself.

The owner's name and the schema are fixed at migrate time (as the search path of
``0006``).
"""

from django.db import migrations

BULK_SETTING = "samverkan.audit_bulk"

RECORD_CHANGE = r"""
CREATE OR REPLACE FUNCTION audit_record_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = __SCHEMA__, pg_temp AS $$
DECLARE
    pk_column text := TG_ARGV[0];
    excluded text[] := TG_ARGV[1:];
    row_data jsonb;
    old_data jsonb;
    changed jsonb := '[]'::jsonb;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- audit_bulk_update() writes this statement's records itself (paired by key).
        IF current_setting('samverkan.audit_bulk', true) = TG_TABLE_NAME THEN
            IF current_user = __OWNER__ THEN
                RETURN NULL;
            END IF;
        END IF;
    END IF;
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
"""

# The guard of 0006, letting in the bulk function's own queue rows.
PENDING_GUARD = r"""
CREATE OR REPLACE FUNCTION audit_pending_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- audit_enqueue() runs as a trigger of audit_accessevent / audit_changerecord,
    -- so its INSERT fires this at depth 2 or more; a statement of a session is depth 1.
    -- audit_bulk_update() (the owner's) queues the records it has just written.
    IF pg_trigger_depth() < 2
       AND NOT (NEW.source = 'history'
                AND coalesce(current_setting('samverkan.audit_bulk', true), '') <> ''
                AND current_user = __OWNER__) THEN
        RAISE EXCEPTION 'audit_pendingentry is filled only by the trigger of the log tables: '
                        'a direct INSERT is not allowed'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Entries are queued for sealing when they are written to the log.';
    END IF;
    RETURN NEW;
END;
$$;
"""

# Evaluated when the row is inserted, as the inserting role: inside audit_bulk_update()
# (the owner, the setting on) no per-row queue insert, the function queues in one.
ENQUEUE_TRIGGER = r"""
DROP TRIGGER audit_enqueue ON audit_changerecord;
CREATE TRIGGER audit_enqueue AFTER INSERT ON audit_changerecord
    FOR EACH ROW
    WHEN (NEW.table_name IS DISTINCT FROM current_setting('samverkan.audit_bulk', true)
          OR current_user <> __OWNER__)
    EXECUTE FUNCTION audit_enqueue('history');
"""

BULK_UPDATE = r"""
CREATE OR REPLACE FUNCTION audit_bulk_update(
    p_table regclass, p_ids anyarray, p_columns text[], p_values anycompatiblearray
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = __SCHEMA__, pg_temp AS $fn$
DECLARE
    args text[];
    pk_column text;
    excluded text[];
    table_name text;
    assignments text;
    selected text;
    aliases text;
    rows integer;
    updated bigint;
BEGIN
    SELECT string_to_array(encode(t.tgargs, 'escape'), '\000'), c.relname
      INTO args, table_name
      FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
     WHERE t.tgrelid = p_table AND t.tgname = 'audit_history' AND t.tgenabled <> 'D';
    IF args IS NULL THEN
        RAISE EXCEPTION 'audit_bulk_update: % has no change history', p_table
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    pk_column := args[1];
    -- tgargs ends with a NUL: the last element is empty.
    excluded := coalesce(args[2:array_length(args, 1) - 1], '{}');
    IF coalesce(array_length(p_columns, 1), 0) = 0
       OR pk_column = ANY(p_columns)
       OR EXISTS (SELECT 1 FROM unnest(p_columns) AS col(name)
                   WHERE NOT EXISTS (SELECT 1 FROM pg_attribute AS a
                                      WHERE a.attrelid = p_table AND a.attname = col.name
                                        AND a.attnum > 0 AND NOT a.attisdropped)) THEN
        RAISE EXCEPTION 'audit_bulk_update: columns % are not updatable columns of %',
            p_columns, p_table USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(array_length(p_ids, 1), 0) = 0 THEN
        RETURN 0;
    END IF;
    rows := array_length(p_ids, 1);
    IF array_ndims(p_values) <> 1
       OR array_length(p_values, 1) <> rows * array_length(p_columns, 1) THEN
        RAISE EXCEPTION 'audit_bulk_update: values must be % columns of one value per id',
            array_length(p_columns, 1) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Column by column: column n's values are the slice [(n-1)*rows+1 : n*rows], unnested
    -- beside the ids (each slice one pass: subscripting an array of variable-length values
    -- walks it from the start, each time).
    SELECT string_agg(format('%I = v.c%s', name, n), ', ' ORDER BY n),
           string_agg(format('$2[%s:%s]', (n - 1) * rows + 1, n * rows), ', ' ORDER BY n),
           string_agg(format('c%s', n), ', ' ORDER BY n)
      INTO assignments, selected, aliases
      FROM unnest(p_columns) WITH ORDINALITY AS col(name, n);

    PERFORM set_config('samverkan.audit_bulk', table_name, true);
    EXECUTE format($sql$
        WITH v AS (
            SELECT * FROM unnest($1, %3$s) AS v(row_id, %7$s)
        ), before_rows AS (
            SELECT t.* FROM %1$s AS t WHERE t.%2$I = ANY($1) FOR UPDATE
        ), after_rows AS (
            UPDATE %1$s AS t SET %4$s
              FROM v JOIN before_rows AS o ON o.%2$I = v.row_id
             WHERE t.%2$I = v.row_id
            RETURNING to_jsonb(t) - $3 AS data, to_jsonb(o) - $3 AS old_data
        ), written AS (
            INSERT INTO audit_changerecord
                (occurred_at, table_name, row_id, operation, data, changed_fields, context,
                 db_role)
            SELECT clock_timestamp(), %5$L, coalesce(n.data ->> %6$L, ''), 'UPDATE', n.data,
                   (SELECT coalesce(jsonb_agg(k.key ORDER BY k.key), '[]'::jsonb)
                      FROM jsonb_object_keys(n.data) AS k(key)
                     WHERE n.data -> k.key IS DISTINCT FROM n.old_data -> k.key),
                   x.context, session_user::text
              FROM after_rows AS n CROSS JOIN (SELECT audit_change_context() AS context) AS x
             WHERE n.data <> n.old_data
            RETURNING id
        ), queued AS (
            INSERT INTO audit_pendingentry (source, entry_id)
            SELECT 'history', id FROM written
        )
        SELECT count(*) FROM after_rows
    $sql$, p_table, pk_column, selected, assignments, table_name, pk_column, aliases)
    INTO updated USING p_ids, p_values, excluded;
    PERFORM set_config('samverkan.audit_bulk', '', true);
    RETURN updated;
END;
$fn$;
"""

# lz4 where the server has it (PostgreSQL 14+ built with it; the column keeps pglz
# otherwise). A record of a row with sealed values is ~2 KB of JSON: compressed on
# insert, and pglz costs about a fifth of a record's insert. Old values stay as they are.
LZ4 = r"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
                WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN
        ALTER TABLE audit_changerecord ALTER COLUMN data SET COMPRESSION lz4;
    END IF;
END;
$$;
"""

REVERSE = r"""
ALTER TABLE audit_changerecord ALTER COLUMN data SET COMPRESSION default;
DROP FUNCTION IF EXISTS audit_bulk_update(regclass, anyarray, text[], anycompatiblearray);
DROP TRIGGER audit_enqueue ON audit_changerecord;
CREATE TRIGGER audit_enqueue AFTER INSERT ON audit_changerecord
    FOR EACH ROW EXECUTE FUNCTION audit_enqueue('history');
CREATE OR REPLACE FUNCTION audit_pending_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'audit_pendingentry is filled only by the trigger of the log tables: '
                        'a direct INSERT is not allowed'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Entries are queued for sealing when they are written to the log.';
    END IF;
    RETURN NEW;
END;
$$;
"""

REVERSE_RECORD_CHANGE = r"""
CREATE OR REPLACE FUNCTION audit_record_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = __SCHEMA__, pg_temp AS $$
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
"""


def _run(*scripts):
    def run(apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT quote_ident(current_schema()), quote_literal(current_user)")
            schema, owner = cursor.fetchone()
            for script in scripts:
                cursor.execute(script.replace("__SCHEMA__", schema).replace("__OWNER__", owner))

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0011_partitioned_access_log"),
    ]

    operations = [
        migrations.RunPython(
            _run(RECORD_CHANGE, PENDING_GUARD, ENQUEUE_TRIGGER, BULK_UPDATE, LZ4),
            _run(REVERSE, REVERSE_RECORD_CHANGE),
        ),
    ]
