"""The core's models: accounts, persons and cases; every model is importable from here."""

from casework.models import accounts, api, cases, persons, retention
from casework.models.accounts import *  # noqa: F403
from casework.models.api import *  # noqa: F403
from casework.models.cases import *  # noqa: F403
from casework.models.persons import *  # noqa: F403
from casework.models.retention import *  # noqa: F403

__all__ = [*accounts.__all__, *api.__all__, *persons.__all__, *cases.__all__, *retention.__all__]
