"""``audit_bulk_reseal`` reads and updates its rows by key, never by a scan of the table
(ADR 0023, session 15).

0013's function found a batch's rows with ``WHERE id = ANY($1)`` and joined the update
to them; with a batch of a thousand ids or more the planner's costs made a scan of the
whole table look cheaper for both (a sequential scan, or a hash or merge join over all
of the key's index): the table read twice per call, a batch's cost growing with the
table, a re-sealing of every case quadratic in their number.

Here each given id looks up its row through the key (a ``LATERAL`` subquery per id,
``FOR UPDATE`` as before) and the function runs with sequential scans, hash and merge
joins off (``SET`` for the call only), so that the update too reaches its rows by key:
as many index probes as the batch has rows, whatever the size of the table. Nothing
else changes (0013's checks, lock, refusals and record, the same text but for these
two places).
"""

import importlib

from django.db import migrations

_0013 = importlib.import_module("audit.migrations.0013_bulk_reseal")

# The settings of the call: every join of the function is one of a batch's rows to the
# table's row by key, for which a nested loop over the key's index is always right.
_HEADER = "SET search_path = __SCHEMA__, pg_temp AS $fn$"
_BY_KEY_HEADER = (
    "SET search_path = __SCHEMA__, pg_temp "
    "SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$"
)
# 0013's lock and check of the given rows: from its first CTE to the update's.
_LOCKED_FROM, _LOCKED_TO = "\n        WITH v AS (", "\n        ), u AS ("
_LOCKED_BY_KEY = """
        WITH checked AS (
            SELECT v.* %13$s, coalesce(%7$s AND %8$s, false) AS ok
              FROM unnest($1 %3$s) AS v(row_id %4$s)
              CROSS JOIN LATERAL (
                  SELECT t.%2$I AS row_id %5$s %6$s FROM %1$s AS t
                   WHERE t.%2$I = v.row_id FOR UPDATE
              ) AS o"""


def _apply(script: str):
    def apply(apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT quote_ident(current_schema())")
            cursor.execute(script.replace("__SCHEMA__", cursor.fetchone()[0]))

    return apply


def _by_key(script: str) -> str:
    start, end = script.find(_LOCKED_FROM), script.find(_LOCKED_TO)
    if script.count(_HEADER) != 1 or script.count(_LOCKED_FROM) != 1 or not 0 < start < end:
        raise ValueError("audit_bulk_reseal: 0013's text is not the one this migration changes")
    script = script[:start] + _LOCKED_BY_KEY + script[end:]
    return script.replace(_HEADER, _BY_KEY_HEADER)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0015_review_volume_summary"),
    ]

    operations = [
        migrations.RunPython(_apply(_by_key(_0013.BULK_RESEAL)), _apply(_0013.BULK_RESEAL)),
    ]
