"""Administrators see, add and change the integration API's clients in the admin; a client
is used only once a second administrator approved it (casework.services.api_clients,
docs/adr/0014-four-eyes-on-power.md). No delete permission: deactivate instead."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSIONS = ["view_apiclient", "add_apiclient", "change_apiclient"]


def _permissions(apps):
    app_config = apps.get_app_config("casework")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    return Permission.objects.filter(content_type__app_label="casework", codename__in=PERMISSIONS)


def grant(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name="administratör").first()
    if group is not None:
        group.permissions.add(*_permissions(apps))


def revoke(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name="administratör").first()
    if group is not None:
        group.permissions.remove(*_permissions(apps))


class Migration(migrations.Migration):
    dependencies = [("casework", "0017_integration_api")]

    operations = [migrations.RunPython(grant, revoke)]
