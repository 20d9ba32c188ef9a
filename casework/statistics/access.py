"""The access-log events of the statistics pages (no person, no case: what was shown)."""

from __future__ import annotations

from audit.services import Action, record_event


def log_view(*, user, period: str, selection: str = "", invalid: bool = False) -> None:
    """The dashboard was viewed (a consultation of anonymised statistics)."""
    record_event(
        action=Action.CONSULT,
        user=user,
        object_type="statistics",
        purpose="statistics for the steering group",
        details={
            "period": period,
            "selection": selection,
            **({"invalid": True} if invalid else {}),
        },
    )


def log_export(*, user, period: str, format: str, programme: str = "", table: str = "") -> None:
    """A CSV table, the printable report or its PDF was produced."""
    record_event(
        action=Action.EXPORT,
        user=user,
        object_type="statistics",
        purpose="statistics for the steering group",
        details={"period": period, "format": format, "programme": programme, "table": table},
    )
