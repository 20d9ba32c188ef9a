"""GVI — gruppvåldsintervention ("Sluta skjut"): groups, members, incidents, call-ins,
custom notifications and sanctions: each object's state machine. One module per object
(``groups``, ``members``, ``incidents``, ``call_ins``, ``notifications``, ``sanctions``), on
``states`` (their states and choices) and ``rules`` (who may take a transition); ``events``
is the timeline, ``processes`` the flows' processes. Every model is importable from here.

Groups that shoot are mapped; their members get the message — at a **call-in**
(a meeting with a moral voice, a law-enforcement voice and an offer of help) or
in a **custom notification** (a one-to-one visit by police and a non-police
messenger, after a police legal assessment and the coordinator's approval of
the message); a group that keeps shooting gets swift, group-wide **sanctions**
from every agency's levers; a member who wants out gets support (a linked SIG
or defector referral).

* **The state machines** (django-fsm-2): :class:`Group`, :class:`GroupMember`,
  :class:`CallIn`, :class:`CustomNotification`, :class:`Sanction`. Each transition
  names who may take it (``permission``) and its guards (``conditions``, each
  with the message the user sees). An :class:`Incident` has no states: police
  record it, and linking it to a monitored group moves the group.
* **The flows** (viewflow, ``workflows.gvi.flow``): ``GviNotificationFlow`` (request →
  police legal assessment → coordinator approval → scheduling and delivery → follow-up),
  ``GviCallInFlow`` (planning → holding → follow-up),
  ``GviMinorNoticeFlow`` (a member under 18: a task in social services' queue) and
  ``GviReferralNoticeFlow`` (an accepted offer of help: the referral it opened waits
  in social services' queue until a named participant takes it up and joins the case's team).
* Every transition goes through ``workflows.gvi.services.transition`` (permission,
  guards, row lock and version, atomic save, timeline, access-log event). GVI
  objects are not cases: a group is not a person's case.

State diagrams::

    Group:        identified → mapped → message_delivered → monitored ⇄ incident_linked
                  incident_linked → sanction_decided → sanction_active → sanction_ended
                  sanction_ended → monitored → dormant
                  sanction_decided → incident_linked (every lever withdrawn)
    Member:       identified → selected → message_delivered → offer_accepted | offer_declined
    Call-in:      planned → attendees_selected → invited → held → followed_up
                  (planned | attendees_selected | invited) → cancelled
    Notification: requested → legal_assessment → approved → scheduled → delivered → follow_up
                  → closed; scheduled → not_reached → scheduled (retry, limited) | closed
    Sanction:     proposed → decided → executed → reported   (per agency lever)
                  (proposed | decided) → withdrawn
"""

from workflows.common.guards import guard
from workflows.gvi.models.call_ins import (
    CallIn,
    CallInAttendee,
    CallInSpeaker,
    attendance_recorded,
    every_attendee_followed_up,
    has_attendees,
    speakers_filled,
)
from workflows.gvi.models.events import (
    GviEvent,
)
from workflows.gvi.models.groups import (
    Group,
    a_lever_executed,
    a_member_has_the_message,
    every_lever_reported,
    every_lever_withdrawn,
    group_received_message,
    has_member,
    incident_linked,
    sanction_decision_recorded,
)
from workflows.gvi.models.incidents import (
    Incident,
)
from workflows.gvi.models.members import (
    GroupMember,
    group_mapped,
    is_minor,
    message_source_recorded,
    referral_opened,
)
from workflows.gvi.models.notifications import (
    CustomNotification,
    DeliveryTeamMember,
    follow_up_recorded,
    legal_assessment_recorded,
    legal_assessment_refuses,
    legal_assessment_supports,
    message_written,
    non_police_messenger,
    offer_recorded,
    retry_left,
    visit_scheduled,
)
from workflows.gvi.models.processes import (
    GviCallInProcess,
    GviMinorNoticeProcess,
    GviNotificationProcess,
    GviReferralNoticeProcess,
)
from workflows.gvi.models.rules import (
    GviParticipation,
    coordinator,
    gvi_staff,
    owning_organisation,
    owning_organisation_or_coordinator,
    police,
    police_or_coordinator,
)
from workflows.gvi.models.sanctions import (
    Sanction,
    SanctionDecision,
    sanctions_in_force,
)
from workflows.gvi.models.states import (
    CALL_IN_HELD_STATES,
    CALL_IN_OPEN_STATES,
    FOLLOW_UP_PENDING_STATES,
    MEMBER_MESSAGE_STATES,
    MESSAGE_RECEIVED_STATES,
    SANCTION_WITHDRAWABLE_STATES,
    CallInStatus,
    CancelReason,
    GroupStatus,
    Lever,
    MemberResponse,
    MemberStatus,
    MessengerKind,
    NotificationCloseReason,
    NotificationStatus,
    ReferralProgramme,
    SanctionStatus,
    SizeBand,
    SpeakerRole,
)

__all__ = [
    "CALL_IN_HELD_STATES",
    "CALL_IN_OPEN_STATES",
    "FOLLOW_UP_PENDING_STATES",
    "MEMBER_MESSAGE_STATES",
    "MESSAGE_RECEIVED_STATES",
    "SANCTION_WITHDRAWABLE_STATES",
    "CallIn",
    "CallInAttendee",
    "CallInSpeaker",
    "CallInStatus",
    "CancelReason",
    "CustomNotification",
    "DeliveryTeamMember",
    "Group",
    "GroupMember",
    "GroupStatus",
    "GviCallInProcess",
    "GviEvent",
    "GviMinorNoticeProcess",
    "GviNotificationProcess",
    "GviParticipation",
    "GviReferralNoticeProcess",
    "Incident",
    "Lever",
    "MemberResponse",
    "MemberStatus",
    "MessengerKind",
    "NotificationCloseReason",
    "NotificationStatus",
    "ReferralProgramme",
    "Sanction",
    "SanctionDecision",
    "SanctionStatus",
    "SizeBand",
    "SpeakerRole",
    "a_lever_executed",
    "a_member_has_the_message",
    "attendance_recorded",
    "coordinator",
    "every_attendee_followed_up",
    "every_lever_reported",
    "every_lever_withdrawn",
    "follow_up_recorded",
    "group_mapped",
    "group_received_message",
    "guard",
    "gvi_staff",
    "has_attendees",
    "has_member",
    "incident_linked",
    "is_minor",
    "legal_assessment_recorded",
    "legal_assessment_refuses",
    "legal_assessment_supports",
    "message_source_recorded",
    "message_written",
    "non_police_messenger",
    "offer_recorded",
    "owning_organisation",
    "owning_organisation_or_coordinator",
    "police",
    "police_or_coordinator",
    "referral_opened",
    "retry_left",
    "sanction_decision_recorded",
    "sanctions_in_force",
    "speakers_filled",
    "visit_scheduled",
]
