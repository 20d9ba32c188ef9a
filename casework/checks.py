"""System checks of the encryption setup (run by ``manage.py check`` and ``migrate``)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from casework.crypto import keyring
from casework.crypto.errors import KeyringError


@checks.register(checks.Tags.security)
def check_keyring(app_configs=None, **kwargs):
    """Production: the keyring file must load and be private to the application account."""
    if not getattr(settings, "PRODUCTION", False):
        return []
    path = settings.KEYRING_FILE
    try:
        keyring.load(path)
    except KeyringError as exc:
        return [checks.Error(str(exc), id="casework.E001")]
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return [
            checks.Error(
                f"The keyring file {path} is accessible to other accounts (mode {mode:o}).",
                hint=f"chmod 600 {path}",
                id="casework.E002",
            )
        ]
    return []
