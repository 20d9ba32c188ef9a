"""The access log partitioned by month (ADR 0031).

``audit_accessevent`` becomes a table partitioned by range of ``occurred_at``, one
partition per calendar month (UTC) and a DEFAULT partition that takes any row no month
partition holds (a back-dated or far-future event: an insert never fails for lack of a
partition). Existing rows are kept with their ids: the old table is renamed, the new one
created with the same columns, the rows copied (before the triggers exist, so nothing is
queued for sealing again), the identity sequence carried on, the old table dropped, and
its indexes and foreign keys created again on the parent (PostgreSQL creates each on
every partition). The primary key becomes ``(id, occurred_at)``; Django's model keeps
``id`` (one sequence: unique by construction).

``audit_create_event_partition(month)`` creates the partition of a month (moving its
rows out of the DEFAULT partition when some landed there first) with the append-only
triggers; migrate creates the months holding data and the current month plus three, and
``manage.py audit partitions`` (daily, with the checkpoint) keeps three months ahead.
"""

import django.db.models.deletion
from django.db import migrations, models

MONTHS_AHEAD = 3

CREATE_PARTITION_FUNCTION = r"""
CREATE OR REPLACE FUNCTION audit_create_event_partition(month date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    low timestamptz := (first_day::timestamp AT TIME ZONE 'UTC');
    high timestamptz := ((first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC');
    name text := 'audit_accessevent_' || to_char(first_day, 'YYYY_MM');
    strays boolean;
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM audit_accessevent_default '
                   'WHERE occurred_at >= %L AND occurred_at < %L)', low, high) INTO strays;
    IF strays THEN
        -- Rows of this month landed in the DEFAULT partition: move them, unchanged
        -- (same ids, same values: their hashes in the chain still hold), into the new
        -- partition, then attach it. Only here is the append-only trigger of the
        -- DEFAULT partition off, inside this one transaction.
        -- (PostgreSQL alters no table with deferred checks pending in the transaction.)
        SET CONSTRAINTS ALL IMMEDIATE;
        EXECUTE format('CREATE TABLE %I (LIKE audit_accessevent INCLUDING DEFAULTS)', name);
        EXECUTE format('INSERT INTO %I SELECT * FROM audit_accessevent_default '
                       'WHERE occurred_at >= %L AND occurred_at < %L', name, low, high);
        ALTER TABLE audit_accessevent_default DISABLE TRIGGER audit_append_only;
        EXECUTE format('DELETE FROM audit_accessevent_default '
                       'WHERE occurred_at >= %L AND occurred_at < %L', low, high);
        ALTER TABLE audit_accessevent_default ENABLE TRIGGER audit_append_only;
        EXECUTE format('ALTER TABLE audit_accessevent ATTACH PARTITION %I '
                       'FOR VALUES FROM (%L) TO (%L)', name, low, high);
    ELSE
        EXECUTE format('CREATE TABLE %I PARTITION OF audit_accessevent '
                       'FOR VALUES FROM (%L) TO (%L)', name, low, high);
    END IF;
    -- Row triggers are cloned from the parent; a statement-level TRUNCATE trigger is not.
    EXECUTE format('CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()', name);
    RETURN name;
END;
$$;
"""

# The refusal names the log's table, not the partition the row trigger fired on (the
# partition goes in the DETAIL).
REFUSE_CHANGE_FUNCTION = r"""
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    root text := (SELECT c.relname FROM pg_class c
                   WHERE c.oid = coalesce(pg_partition_root(TG_RELID), TG_RELID));
BEGIN
    IF root <> TG_TABLE_NAME THEN
        RAISE EXCEPTION 'audit table % is append-only: % is not allowed', root, TG_OP
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Refused on its partition %s.', TG_TABLE_NAME),
                  HINT = 'Entries of the access log and the change history are never changed or removed.';
    END IF;
    RAISE EXCEPTION 'audit table % is append-only: % is not allowed', root, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Entries of the access log and the change history are never changed or removed.';
END;
$$;
"""

PREVIOUS_REFUSE_CHANGE_FUNCTION = r"""
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Entries of the access log and the change history are never changed or removed.';
END;
$$;
"""

CONVERT = r"""
DO $$
DECLARE
    definitions text[];
    definition text;
    last_id bigint;
    called boolean;
    month date;
BEGIN
    -- Index and foreign-key definitions of the old table, to be made again on the new one.
    SELECT coalesce(array_agg(pg_get_indexdef(i.indexrelid)), '{}') INTO definitions
      FROM pg_index i
     WHERE i.indrelid = 'audit_accessevent'::regclass AND NOT i.indisprimary;
    SELECT definitions || coalesce(array_agg(
               format('ALTER TABLE audit_accessevent ADD CONSTRAINT %I %s',
                      c.conname, pg_get_constraintdef(c.oid))), '{}')
      INTO definitions
      FROM pg_constraint c
     WHERE c.conrelid = 'audit_accessevent'::regclass AND c.contype = 'f';
    SELECT last_value, is_called INTO last_id, called FROM audit_accessevent_id_seq;

    ALTER TABLE audit_accessevent RENAME TO audit_accessevent_unpartitioned;
    ALTER TABLE audit_accessevent_unpartitioned
        RENAME CONSTRAINT audit_accessevent_pkey TO audit_accessevent_unpartitioned_pkey;
    ALTER SEQUENCE audit_accessevent_id_seq RENAME TO audit_accessevent_unpartitioned_id_seq;

    CREATE TABLE audit_accessevent (
        LIKE audit_accessevent_unpartitioned INCLUDING DEFAULTS INCLUDING IDENTITY
    ) PARTITION BY RANGE (occurred_at);
    ALTER TABLE audit_accessevent ADD CONSTRAINT audit_accessevent_pkey
        PRIMARY KEY (id, occurred_at);
    CREATE TABLE audit_accessevent_default PARTITION OF audit_accessevent DEFAULT;
    CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON audit_accessevent_default
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

    -- The identity sequence goes on where the old one stopped.
    PERFORM setval(pg_get_serial_sequence('audit_accessevent', 'id'), last_id, called);

    FOR month IN
        SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date
          FROM audit_accessevent_unpartitioned
        UNION
        SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + n * interval '1 month')::date
          FROM generate_series(0, %(ahead)s) AS n
    LOOP
        PERFORM audit_create_event_partition(month);
    END LOOP;

    -- No trigger on the new table yet: the copy queues nothing for sealing again.
    INSERT INTO audit_accessevent OVERRIDING SYSTEM VALUE
        SELECT * FROM audit_accessevent_unpartitioned;
    DROP TABLE audit_accessevent_unpartitioned;

    FOREACH definition IN ARRAY definitions LOOP
        EXECUTE replace(definition, 'audit_accessevent_unpartitioned', 'audit_accessevent');
    END LOOP;

    CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit_accessevent
        FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
    CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON audit_accessevent
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
    CREATE TRIGGER audit_enqueue AFTER INSERT ON audit_accessevent
        FOR EACH ROW EXECUTE FUNCTION audit_enqueue('access');
    ANALYZE audit_accessevent;
END;
$$;
""".replace("%(ahead)s", str(MONTHS_AHEAD))

ARCHIVE_APPEND_ONLY = [
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit_archivedpartition "
    "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();",
    "CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON audit_archivedpartition "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();",
]


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0010_merged_choices"),
    ]

    operations = [
        migrations.CreateModel(
            name="ArchivedPartition",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("month", models.DateField(unique=True, verbose_name="month")),
                ("table_name", models.CharField(max_length=63, verbose_name="table")),
                ("entries", models.BigIntegerField(verbose_name="entries")),
                (
                    "first_position",
                    models.BigIntegerField(null=True, verbose_name="first position"),
                ),
                ("last_position", models.BigIntegerField(null=True, verbose_name="last position")),
                ("id_ranges", models.JSONField(default=list, verbose_name="ids")),
                ("export_name", models.CharField(max_length=255, verbose_name="export file")),
                ("export_sha256", models.CharField(max_length=64, verbose_name="export SHA-256")),
                ("detached_at", models.DateTimeField(verbose_name="detached at (UTC)")),
                ("key_id", models.CharField(max_length=16, verbose_name="signing key")),
                ("signature", models.TextField(verbose_name="signature")),
            ],
            options={
                "verbose_name": "archived month of the access log",
                "verbose_name_plural": "archived months of the access log",
                "ordering": ["month"],
                "default_permissions": (),
            },
        ),
        migrations.AlterField(
            model_name="findingoutcome",
            name="event",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="audit.accessevent",
                verbose_name="access event",
            ),
        ),
        migrations.RunSQL(sql=REFUSE_CHANGE_FUNCTION, reverse_sql=PREVIOUS_REFUSE_CHANGE_FUNCTION),
        migrations.RunSQL(sql=ARCHIVE_APPEND_ONLY, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(
            sql=CREATE_PARTITION_FUNCTION,
            reverse_sql="DROP FUNCTION IF EXISTS audit_create_event_partition(date);",
        ),
        # One way: going back would mean copying the log into a plain table again.
        migrations.RunSQL(sql=CONVERT, reverse_sql=None),
    ]
