"""Give the roles the case capabilities, administrators the legal-basis register,
and seed the legal bases the agreement relies on (to be confirmed by a lawyer;
administrators maintain them as data)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "samordnare": ["coordinate_cases", "break_glass"],
    "avhopparsamordnare": ["coordinate_defector_cases", "break_glass"],
    "kontaktpolis": ["break_glass"],
    "administratör": ["view_legalbasis", "add_legalbasis", "change_legalbasis"],
}

LEGAL_BASES = [
    {
        "code": "consent",
        "name": "Samtycke",
        "kind": "consent",
        "description": (
            "Den enskildes (och under 18 år vårdnadshavarnas) samtycke till att "
            "uppgifter lämnas mellan de organisationer samtycket omfattar."
        ),
    },
    {
        "code": "osl-10-18a",
        "name": "OSL 10 kap. 18 a §",
        "kind": "statute",
        "description": (
            "Socialtjänsten får lämna uppgifter till Polismyndigheten om en person "
            "under 21 år om särskilda omständigheter talar för att personen kommer att "
            "begå brott, uppgiften kan bidra till att förhindra det och det inte är "
            "olämpligt med hänsyn till socialtjänstens insatser."
        ),
        "discloser_kinds": ["social_services"],
        "recipient_kinds": ["police"],
        "max_age": 21,
    },
    {
        "code": "osl-10-2",
        "name": "OSL 10 kap. 2 §",
        "kind": "statute",
        "description": (
            "Nödvändigt utlämnande: uppgiften får lämnas om det är nödvändigt för att "
            "den utlämnande myndigheten ska kunna fullgöra sin egen verksamhet."
        ),
    },
]


def forwards(apps, schema_editor):
    for app_label in ("casework",):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=name)
        for codename in codenames:
            group.permissions.add(
                Permission.objects.get(content_type__app_label="casework", codename=codename)
            )
    LegalBasis = apps.get_model("casework", "LegalBasis")
    for basis in LEGAL_BASES:
        LegalBasis.objects.update_or_create(code=basis["code"], defaults=basis)


def backwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLE_PERMISSIONS.items():
        group = Group.objects.filter(name=name).first()
        if group:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="casework", codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [("casework", "0004_case_machinery")]

    operations = [migrations.RunPython(forwards, backwards)]
