"""Keys per case (docs/adr/0023-keys-per-case.md).

``Case.keyed_at``: existing cases get none (their values are still under their
person's data key); a case opened from now on gets the time it was opened. Then the
values of existing cases are moved to keys of their own: here when there are few
(:data:`RESEAL_IN_MIGRATION` cases at most), otherwise the migration says to run
``python manage.py reseal_case_keys`` (the application works meanwhile: reads fall
back to the person's key until a case is moved).
"""

from django.db import migrations, models
from django.utils import timezone

# Up to this many cases to move, the migration moves them itself (a few seconds).
RESEAL_IN_MIGRATION = 5000


def reseal_small(apps, schema_editor):
    if schema_editor.connection.alias != "default":
        return
    Case = apps.get_model("casework", "Case")
    waiting = Case.objects.filter(keyed_at__isnull=True).count()
    if not waiting:
        return
    command = "python manage.py reseal_case_keys"
    if waiting > RESEAL_IN_MIGRATION:
        print(
            f"\n  {waiting} cases still have their values under their person's data key: "
            f"run `{command}` (resumable; the application works meanwhile)."
        )
        return
    # The current services, not the historical models: they know every table that holds
    # a case's sealed values and how to seal them. Failing (no key store yet, no
    # keyring), the migration still succeeds and names the command.
    from casework.services.case_keys import reseal_case_keys

    try:
        result = reseal_case_keys(purpose="Nycklar per ärende (migrering)")
    except Exception as exc:  # noqa: BLE001 - the operator runs the command instead
        print(
            f"\n  Moving {waiting} cases to keys of their own failed ({type(exc).__name__}): "
            f"run `{command}`."
        )
        return
    print(f"\n  {result.cases} cases moved to keys of their own ({result.values} values).")


class Migration(migrations.Migration):
    # Each batch of the re-sealing commits on its own (resumable).
    atomic = False

    dependencies = [("casework", "0028_event_kinds_merged")]

    operations = [
        migrations.AddField(
            model_name="case",
            name="keyed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="case",
            name="keyed_at",
            field=models.DateTimeField(
                blank=True, default=timezone.now, editable=False, null=True
            ),
        ),
        migrations.RunPython(reseal_small, migrations.RunPython.noop, elidable=True),
    ]
