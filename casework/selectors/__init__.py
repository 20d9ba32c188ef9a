"""Reads of case data: the only code that decrypts personal data.

Every selector takes the requesting ``user`` and the ``purpose``, asks
``casework.policy`` and writes its access-log event. ``persons`` reads persons;
``cases`` reads cases (the case page, lists, timelines).
"""

from casework.selectors.persons import (
    PERSON_OBJECT,
    PersonDetails,
    PersonErased,
    find_person,
    get_person_details,
)

__all__ = [
    "PERSON_OBJECT",
    "PersonDetails",
    "PersonErased",
    "find_person",
    "get_person_details",
]
