"""Administrators see the counted failed sign-ins (django-axes) and lift a lock
(docs/adr/0016-lockout-sessions-and-headers.md). A lift grants nothing: no four eyes."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSIONS = ["view_accessattempt", "delete_accessattempt"]


def grant(apps, schema_editor):
    app_config = apps.get_app_config("axes")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="administratör").first()
    if group is not None:
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="axes", codename__in=PERMISSIONS)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="administratör").first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="axes", codename__in=PERMISSIONS)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("axes", "0010_accessattemptexpiration"),
        ("casework", "0015_single_sign_on"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
