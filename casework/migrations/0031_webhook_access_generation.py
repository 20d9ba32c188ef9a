"""Webhooks raise the access generation (docs/adr/0035-request-path.md): which events any
active webhook subscribes to is kept per process under it, so that a change to
``casework_webhook`` (registered, switched off, deleted — with its client too) counts at
the next event in every process."""

from django.db import migrations

CREATE = (
    "CREATE TRIGGER casework_webhook_access_generation AFTER INSERT OR UPDATE OR DELETE "
    "ON casework_webhook FOR EACH STATEMENT EXECUTE FUNCTION samverkan_raise_access_generation();"
)
DROP = "DROP TRIGGER IF EXISTS casework_webhook_access_generation ON casework_webhook;"


class Migration(migrations.Migration):
    dependencies = [("casework", "0030_retention_rules_and_culled_cases")]

    operations = [migrations.RunSQL(CREATE, DROP)]
