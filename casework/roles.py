"""The roles of Samverkan: names of the Django groups and what each one starts on.

The groups and their permissions are created by the migration
``casework/migrations/0002_role_groups.py``; this module names them for the
runtime code so that no view spells a group name by hand.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

SOCIAL_WORKER = "socialsekreterare"
POLICE_CONTACT = "kontaktpolis"
COORDINATOR = "samordnare"
DEFECTOR_COORDINATOR = "avhopparsamordnare"
SCHOOL = "skola"
LEISURE = "fritid"
STEERING_GROUP = "styrgrupp"
AUDITOR = "granskare"
ADMINISTRATOR = "administratör"
# The data protection function (dataskyddsombud): the data subject's register extract
# (GDPR art. 15) for its own organisation, and no other case data.
DATA_PROTECTION = "dataskydd"

LABELS = {
    SOCIAL_WORKER: _("Social worker"),
    POLICE_CONTACT: _("Police contact officer"),
    COORDINATOR: _("Coordinator"),
    DEFECTOR_COORDINATOR: _("Defector coordinator"),
    SCHOOL: _("School staff"),
    LEISURE: _("Leisure staff"),
    STEERING_GROUP: _("Steering group"),
    AUDITOR: _("Auditor"),
    ADMINISTRATOR: _("Administrator"),
    DATA_PROTECTION: _("Data protection"),
}

CASE_ROLES = (
    SOCIAL_WORKER,
    POLICE_CONTACT,
    COORDINATOR,
    DEFECTOR_COORDINATOR,
    SCHOOL,
    LEISURE,
)
ALL_ROLES = (*CASE_ROLES, STEERING_GROUP, AUDITOR, ADMINISTRATOR, DATA_PROTECTION)

# Permissions behind each start page (casework.Capability).
PERM_TASK_INBOX = "casework.use_task_inbox"
PERM_STATISTICS = "casework.view_statistics"
PERM_ACCESS_LOG = "casework.view_access_log"
PERM_COORDINATE = "casework.coordinate_cases"
PERM_COORDINATE_DEFECTOR = "casework.coordinate_defector_cases"
PERM_BREAK_GLASS = "casework.break_glass"
# The register extract (registerutdrag) of one person, for the user's own organisation.
PERM_REGISTER_EXTRACT = "casework.produce_register_extract"
# Erasing a person (casework.Person); granted to no role yet.
PERM_ERASE_PERSON = "casework.erase_person"
