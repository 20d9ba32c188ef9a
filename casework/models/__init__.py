"""The core's models: accounts, persons and cases; every model is importable from here."""

from casework.models import absences, accounts, api, base, cases, extracts, persons, retention
from casework.models.absences import *  # noqa: F403
from casework.models.accounts import *  # noqa: F403
from casework.models.api import *  # noqa: F403
from casework.models.base import *  # noqa: F403
from casework.models.cases import *  # noqa: F403
from casework.models.extracts import *  # noqa: F403
from casework.models.persons import *  # noqa: F403
from casework.models.retention import *  # noqa: F403

__all__ = [
    *absences.__all__,
    *accounts.__all__,
    *api.__all__,
    *base.__all__,
    *persons.__all__,
    *cases.__all__,
    *extracts.__all__,
    *retention.__all__,
]
