"""GVI writes: groups, members, incidents, call-ins, custom notifications and sanctions.

The same rules as the case services, for objects that are not cases: keyword-only
functions that take the acting ``user`` and the ``purpose``, ask ``casework.policy``,
lock the object's row and check the version the user saw, work inside
``transaction.atomic()`` and write their access-log event there (field names only).
A refusal writes an ``ACCESS_DENIED`` event that survives the rollback and raises
:class:`~casework.services.transitions.Denied`; a stale form raises
:class:`~casework.services.transitions.Conflict`; bad input raises
``ValidationError``. :func:`transition` (the core's transition engine) is the one way
a GVI object changes state.

``access`` describes GVI's versioned objects to the engine and holds the shared
checks and the write (``changing``); ``groups`` the groups, members, incidents,
sanctions and the offer of help; ``delivery`` the call-ins and custom notifications.
Every public name is importable from here.
"""

from casework.services.transitions import may_transition, transition, unmet_conditions
from workflows.gvi import models as gvi
from workflows.gvi.models import (
    CallIn,
    CustomNotification,
    Group,
    GroupMember,
    Sanction,
)
from workflows.gvi.services.access import (
    NAME_LIMIT,
    NOTE_LIMIT,
    WITHDRAW_REASON_LIMIT,
    deny,
    require_gvi_access,
)
from workflows.gvi.services.delivery import (
    add_attendee,
    add_messenger,
    approve_notification,
    create_call_in,
    deliver_to_member,
    hold_call_in,
    record_attendance,
    record_call_in_follow_up,
    record_delivery,
    record_delivery_step,
    record_legal_assessment,
    record_notification_follow_up,
    request_notification,
    schedule_notification,
    set_speaker,
)
from workflows.gvi.services.groups import (
    TakeUp,
    accept_offer,
    acknowledge_minor_notice,
    add_member,
    add_member_by_personnummer,
    create_group,
    decide_sanctions,
    erase_group,
    record_incident,
    sanction_step,
    set_member_protected_identity,
    take_up_referral,
    update_group_notes,
    withdraw_sanction,
)

__all__ = [
    "NAME_LIMIT",
    "NOTE_LIMIT",
    "WITHDRAW_REASON_LIMIT",
    "CallIn",
    "CustomNotification",
    "Group",
    "GroupMember",
    "Sanction",
    "TakeUp",
    "accept_offer",
    "acknowledge_minor_notice",
    "add_attendee",
    "add_member",
    "add_member_by_personnummer",
    "add_messenger",
    "approve_notification",
    "create_call_in",
    "create_group",
    "decide_sanctions",
    "deliver_to_member",
    "deny",
    "erase_group",
    "gvi",
    "hold_call_in",
    "may_transition",
    "record_attendance",
    "record_call_in_follow_up",
    "record_delivery",
    "record_delivery_step",
    "record_incident",
    "record_legal_assessment",
    "record_notification_follow_up",
    "request_notification",
    "require_gvi_access",
    "sanction_step",
    "schedule_notification",
    "set_member_protected_identity",
    "set_speaker",
    "take_up_referral",
    "transition",
    "unmet_conditions",
    "update_group_notes",
    "withdraw_sanction",
]
