"""Writes of case data: the only code that seals personal data and writes its audit events.

``persons`` registers, changes and erases persons and rotates keys; ``cases``
runs the shared case machinery (consent, legal basis, case teams, actions,
transitions, break-the-glass).
"""

from casework.services.persons import (
    PLAIN_FIELDS,
    TEXT_LIMITS,
    UNSET,
    RotationResult,
    check_registration,
    create_person,
    discard_stale_demo_data_keys,
    erase_person,
    find_or_create_person,
    retire_key_version,
    rotate_data_keys,
    sweep_orphan_data_keys,
    update_person,
)

__all__ = [
    "PLAIN_FIELDS",
    "TEXT_LIMITS",
    "UNSET",
    "RotationResult",
    "check_registration",
    "create_person",
    "discard_stale_demo_data_keys",
    "erase_person",
    "find_or_create_person",
    "retire_key_version",
    "rotate_data_keys",
    "sweep_orphan_data_keys",
    "update_person",
]
