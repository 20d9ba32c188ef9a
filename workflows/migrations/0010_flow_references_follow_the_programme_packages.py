"""viewflow stores a process's flow and a task's node as an import path below the app
("workflows/sig.SigFlow", "workflows/sig.SigFlow.screen"). Each programme's flows moved
into its package (``workflows/sig/flow.py`` …, docs/adr/0020-one-package-per-programme.md):
the stored paths follow, both ways. Nothing else changes."""

from django.db import migrations

# Where each flow class was (below ``workflows``) → where it is.
MOVED = {
    "sig.SigFlow": "sig.flow.SigFlow",
    "sspf.SspfFlow": "sspf.flow.SspfFlow",
    "defector.DefectorFlow": "defector.flow.DefectorFlow",
    "defector.ThreatReviewFlow": "defector.flow.ThreatReviewFlow",
    "gvi.GviNotificationFlow": "gvi.flow.GviNotificationFlow",
    "gvi.GviCallInFlow": "gvi.flow.GviCallInFlow",
    "gvi.GviMinorNoticeFlow": "gvi.flow.GviMinorNoticeFlow",
    "gvi.GviReferralNoticeFlow": "gvi.flow.GviReferralNoticeFlow",
}


def rewrite(schema_editor, moves: dict[str, str]) -> None:
    with schema_editor.connection.cursor() as cursor:
        for old, new in moves.items():
            old_ref, new_ref = f"workflows/{old}", f"workflows/{new}"
            cursor.execute(
                "UPDATE viewflow_process SET flow_class = %s WHERE flow_class = %s",
                [new_ref, old_ref],
            )
            # A task's reference is its flow's followed by ".<node name>".
            cursor.execute(
                "UPDATE viewflow_task SET flow_task = %s || substr(flow_task, %s) "
                "WHERE left(flow_task, %s) = %s",
                [new_ref, len(old_ref) + 1, len(old_ref) + 1, f"{old_ref}."],
            )


def forwards(apps, schema_editor) -> None:
    rewrite(schema_editor, MOVED)


def backwards(apps, schema_editor) -> None:
    rewrite(schema_editor, {new: old for old, new in MOVED.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("viewflow", "0015_task_scheduled"),
        ("workflows", "0009_gvi_referral_notice_sanction_withdrawal_group_erasure"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
