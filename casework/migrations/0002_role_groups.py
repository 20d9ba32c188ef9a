"""Create the role groups of Samverkan with their permissions.

The mapping is frozen here, as a migration must be; later migrations add the
permissions of later models to these groups. Demo users are never created by
a migration: only ``manage.py seed_demo`` makes them.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CASE_WORK = [("casework", "use_task_inbox")]

ROLE_PERMISSIONS = {
    "socialsekreterare": CASE_WORK,
    "kontaktpolis": CASE_WORK,
    "samordnare": CASE_WORK,
    "avhopparsamordnare": CASE_WORK,
    "skola": CASE_WORK,
    "fritid": CASE_WORK,
    "styrgrupp": [("casework", "view_statistics")],
    "granskare": [("casework", "view_access_log")],
    # Administrators are Django staff: they manage accounts and organisations
    # and get no case data. They may deactivate accounts, not delete them
    # (the access log refers to them).
    "administratör": [
        ("casework", "view_user"),
        ("casework", "add_user"),
        ("casework", "change_user"),
        ("casework", "view_organisation"),
        ("casework", "add_organisation"),
        ("casework", "change_organisation"),
        ("auth", "view_group"),
    ],
}


def create_role_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; make them now.
    # (create_permissions skips migration-state app configs without a models
    # module; these have models, so mark them for the duration of the call.)
    for app_label in ("auth", "casework"):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in perms:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_role_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("casework", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_role_groups, remove_role_groups)]
