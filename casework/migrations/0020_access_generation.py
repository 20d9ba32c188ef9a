"""The access generation: a row the database raises with every change to who may do
what, so processes may keep what they read of it (``casework.access_cache``).

The triggers run in the changing transaction, so its own later statements, and every
transaction after its commit, see the raised number; a reader reads the number before
the rows it keeps, both committed states, so it may keep newer rows under an older
number (read again next time), never older rows under the newer one.
"""

from django.db import migrations, models

# (table, the row change that matters). An account's last sign-in is not one: every
# sign-in writes it.
WATCHED = (
    (
        "casework_user",
        "(to_jsonb(OLD) - 'last_login') IS DISTINCT FROM (to_jsonb(NEW) - 'last_login')",
    ),
    ("casework_user_groups", None),
    ("casework_user_user_permissions", None),
    ("auth_group", None),
    ("auth_group_permissions", None),
    ("casework_organisation", None),
    ("casework_apiclient", None),
    ("oauth2_provider_application", None),
    ("oauth2_provider_accesstoken", None),
)

FUNCTION = """
CREATE FUNCTION samverkan_raise_access_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE casework_accessgeneration SET value = value + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;
"""


def _triggers() -> tuple[str, str]:
    create, drop = [FUNCTION], []
    for table, changed in WATCHED:
        name = f"{table}_access_generation"
        if changed:  # row by row, only where the row really changed
            create.append(
                f"CREATE TRIGGER {name}_update AFTER UPDATE ON {table} FOR EACH ROW "
                f"WHEN ({changed}) EXECUTE FUNCTION samverkan_raise_access_generation();"
            )
            drop.append(f"DROP TRIGGER IF EXISTS {name}_update ON {table};")
            events = "DELETE"
        else:
            events = "INSERT OR UPDATE OR DELETE"
        create.append(
            f"CREATE TRIGGER {name} AFTER {events} ON {table} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION samverkan_raise_access_generation();"
        )
        drop.append(f"DROP TRIGGER IF EXISTS {name} ON {table};")
    drop.append("DROP FUNCTION IF EXISTS samverkan_raise_access_generation();")
    return "\n".join(create), "\n".join(drop)


CREATE, DROP = _triggers()


class Migration(migrations.Migration):
    dependencies = [
        ("casework", "0019_administrators_see_webhooks"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("oauth2_provider", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="AccessGeneration",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("value", models.BigIntegerField(default=0)),
            ],
            options={"default_permissions": ()},
        ),
        migrations.RunSQL(
            "INSERT INTO casework_accessgeneration (id, value) VALUES (1, 0);",
            migrations.RunSQL.noop,
        ),
        migrations.RunSQL(CREATE, DROP),
    ]
