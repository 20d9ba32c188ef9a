"""The re-seal's record of the change history (ADR 0023, session 14).

``audit_bulk_reseal(table, ids, columns, values, stamp)`` moves sealed values of many rows
of a tracked table to another data key in one statement, and writes **one** change record
for the statement instead of one copy of each row:

- it only re-seals: each given value is either the row's value as it is (left alone) or a
  sealed value (format byte 1) whose header — the format byte and the id of the data key
  it is sealed under, 17 bytes — differs from the old value's. Any other value (a new
  plaintext under the same key, an empty value, a non-sealed byte string) stops the
  statement with an error: nothing is changed;
- ``stamp`` (optional) names a ``timestamptz`` column that is empty in every row and is set
  to the statement's time (``Case.keyed_at``); a row where it is set already stops it;
- the record: ``operation = 'UPDATE'``, ``row_id = ''`` (a statement's record, as a
  ``TRUNCATE``'s), ``changed_fields`` the columns changed in any row, ``data`` =
  ``{"reseal": {"rows": [{"id": …, <column>: "sha256:<hex of the new value>", …}],
  "stamp": {<column>: <time>}}}``: every row id, which of its values moved and the SHA-256
  of each new value (the table's value can be checked against it), never the value;
  ``context`` and ``db_role`` as the row trigger's. It is chained like every record.

The row trigger stands aside as for ``audit_bulk_update`` (the same transaction-local
setting, only as the audit owner, only for the one statement); the record is inserted
after the setting is cleared, so the queue's trigger queues it as every record.
"""

from django.db import migrations

BULK_RESEAL = r"""
CREATE OR REPLACE FUNCTION audit_bulk_reseal(
    p_table regclass, p_ids anyarray, p_columns text[], p_values bytea[], p_stamp text
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = __SCHEMA__, pg_temp AS $fn$
DECLARE
    args text[];
    pk_column text;
    excluded text[];
    table_name text;
    n_columns integer := coalesce(array_length(p_columns, 1), 0);
    n_rows integer;
    at timestamptz := clock_timestamp();
    assignments text;
    slices text;
    aliases text;
    olds text;
    old_aliases text;
    valid text;
    digests text;
    changes text;
    stamp_set text := '';
    stamp_old text := '';
    stamp_valid text := 'true';
    bad bigint;
    updated bigint;
    entries jsonb;
    changed text[];
BEGIN
    SELECT string_to_array(encode(t.tgargs, 'escape'), '\000'), c.relname
      INTO args, table_name
      FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
     WHERE t.tgrelid = p_table AND t.tgname = 'audit_history' AND t.tgenabled <> 'D';
    IF args IS NULL THEN
        RAISE EXCEPTION 'audit_bulk_reseal: % has no change history', p_table
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    pk_column := args[1];
    excluded := coalesce(args[2:array_length(args, 1) - 1], '{}');
    -- Sealed columns only (bytea), neither the key nor an excluded one; the stamp a
    -- timestamptz column, likewise.
    IF (n_columns = 0 AND p_stamp IS NULL)
       OR EXISTS (SELECT 1 FROM unnest(p_columns) AS col(name)
                   WHERE col.name = pk_column OR col.name = ANY(excluded)
                      OR NOT EXISTS (SELECT 1 FROM pg_attribute AS a
                                      WHERE a.attrelid = p_table AND a.attname = col.name
                                        AND a.attnum > 0 AND NOT a.attisdropped
                                        AND a.atttypid = 'bytea'::regtype))
       OR (p_stamp IS NOT NULL
           AND (p_stamp = pk_column OR p_stamp = ANY(excluded) OR p_stamp = ANY(p_columns)
                OR NOT EXISTS (SELECT 1 FROM pg_attribute AS a
                                WHERE a.attrelid = p_table AND a.attname = p_stamp
                                  AND a.attnum > 0 AND NOT a.attisdropped
                                  AND a.atttypid = 'timestamptz'::regtype))) THEN
        RAISE EXCEPTION 'audit_bulk_reseal: columns % (stamp %) are not sealed columns of %',
            p_columns, p_stamp, p_table USING ERRCODE = 'invalid_parameter_value';
    END IF;
    n_rows := coalesce(array_length(p_ids, 1), 0);
    IF n_rows = 0 THEN
        RETURN 0;
    END IF;
    IF coalesce(array_length(p_values, 1), 0) <> n_rows * n_columns THEN
        RAISE EXCEPTION 'audit_bulk_reseal: values must be % columns of one value per id',
            n_columns USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Column n: new value v.cn, old o.on (the slice of the values as in audit_bulk_update).
    SELECT coalesce(string_agg(format('%I = v.c%s', name, n), ', ' ORDER BY n), ''),
           coalesce(string_agg(format(', $2[%s:%s]', (n - 1) * n_rows + 1, n * n_rows), ''
                               ORDER BY n), ''),
           coalesce(string_agg(format(', c%s', n), '' ORDER BY n), ''),
           coalesce(string_agg(format(', t.%I AS o%s', name, n), '' ORDER BY n), ''),
           coalesce(string_agg(format(', o.o%s', n), '' ORDER BY n), ''),
           coalesce(string_agg(format(
               '(v.c%1$s IS NOT DISTINCT FROM o.o%1$s OR (o.o%1$s IS NOT NULL '
               'AND length(v.c%1$s) > 17 AND get_byte(v.c%1$s, 0) = 1 '
               'AND substr(v.c%1$s, 1, 17) <> substr(o.o%1$s, 1, 17)))', n), ' AND ' ORDER BY n),
               'true'),
           coalesce(string_agg(format(
               ', %L, CASE WHEN k.c%s IS DISTINCT FROM k.o%s '
               'THEN ''sha256:'' || encode(sha256(k.c%s), ''hex'') END', name, n, n, n), ''
               ORDER BY n), ''),
           coalesce(string_agg(format(
               ', CASE WHEN bool_or(k.c%s IS DISTINCT FROM k.o%s) THEN %L END', n, n, name), ''
               ORDER BY n), '')
      INTO assignments, slices, aliases, olds, old_aliases, valid, digests, changes
      FROM unnest(p_columns) WITH ORDINALITY AS col(name, n);
    IF p_stamp IS NOT NULL THEN
        stamp_set := format('%s%I = $3', CASE WHEN assignments = '' THEN '' ELSE ', ' END,
                            p_stamp);
        stamp_old := format(', t.%I AS stamp_old', p_stamp);
        old_aliases := old_aliases || ', o.stamp_old';
        stamp_valid := 'o.stamp_old IS NULL';
    END IF;

    PERFORM set_config('samverkan.audit_bulk', table_name, true);
    EXECUTE format($sql$
        WITH v AS (
            SELECT * FROM unnest($1 %3$s) AS v(row_id %4$s)
        ), o AS (
            SELECT t.%2$I AS row_id %5$s %6$s FROM %1$s AS t WHERE t.%2$I = ANY($1) FOR UPDATE
        ), checked AS (
            SELECT v.* %13$s, coalesce(%7$s AND %8$s, false) AS ok
              FROM v JOIN o ON o.row_id = v.row_id
        ), u AS (
            UPDATE %1$s AS t SET %9$s %10$s
              FROM checked AS v WHERE t.%2$I = v.row_id AND v.ok
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM checked WHERE NOT ok),
               (SELECT count(*) FROM u),
               jsonb_agg(jsonb_strip_nulls(jsonb_build_object('id', k.row_id::text %11$s))
                         ORDER BY k.row_id),
               array_remove(ARRAY[NULL::text %12$s], NULL)
          FROM checked AS k WHERE k.ok
    $sql$, p_table, pk_column, slices, aliases, olds, stamp_old, valid, stamp_valid,
        assignments, stamp_set, digests, changes, old_aliases)
    INTO bad, updated, entries, changed USING p_ids, p_values, at;
    IF bad > 0 THEN
        RAISE EXCEPTION 'audit_bulk_reseal: % rows of % given values that are not a re-sealing '
                        'of their value (or a stamp already set): nothing was changed',
            bad, table_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('samverkan.audit_bulk', '', true);
    IF updated > 0 THEN
        IF p_stamp IS NOT NULL THEN
            changed := array_append(changed, p_stamp);
        END IF;
        INSERT INTO audit_changerecord
            (occurred_at, table_name, row_id, operation, data, changed_fields, context, db_role)
        VALUES
            (at, table_name, '', 'UPDATE',
             jsonb_build_object('reseal', jsonb_strip_nulls(jsonb_build_object(
                 'rows', entries,
                 'stamp', CASE WHEN p_stamp IS NOT NULL THEN jsonb_build_object(p_stamp, at) END))),
             (SELECT coalesce(jsonb_agg(c ORDER BY c), '[]'::jsonb) FROM unnest(changed) AS c),
             audit_change_context(), session_user::text);
    END IF;
    RETURN updated;
END;
$fn$;
"""

REVERSE = """
DROP FUNCTION IF EXISTS audit_bulk_reseal(regclass, anyarray, text[], bytea[], text);
"""


def _run(script):
    def run(apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT quote_ident(current_schema())")
            (schema,) = cursor.fetchone()
            cursor.execute(script.replace("__SCHEMA__", schema))

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0012_bulk_history"),
    ]

    operations = [
        migrations.RunPython(_run(BULK_RESEAL), _run(REVERSE)),
    ]
