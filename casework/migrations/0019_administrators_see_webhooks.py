"""Administrators see the API clients' webhooks and deliveries (ids and states only), switch
a webhook off and send a delivery again (docs/adr/0022-integration-api.md). Switching off
grants nothing: no four eyes."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSIONS = ["view_webhook", "change_webhook", "view_webhookdelivery"]


def _permissions(apps):
    Permission = apps.get_model("auth", "Permission")
    return Permission.objects.filter(content_type__app_label="casework", codename__in=PERMISSIONS)


def grant(apps, schema_editor):
    app_config = apps.get_app_config("casework")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    group = Group.objects.filter(name="administratör").first()
    if group is not None:
        group.permissions.add(*_permissions(apps))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    group = Group.objects.filter(name="administratör").first()
    if group is not None:
        group.permissions.remove(*_permissions(apps))


class Migration(migrations.Migration):
    dependencies = [("casework", "0018_administrators_api_clients")]

    operations = [migrations.RunPython(grant, revoke)]
