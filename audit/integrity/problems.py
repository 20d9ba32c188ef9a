"""What the verifier finds: the kinds of problem and a finding (where, what)."""

from __future__ import annotations

from dataclasses import dataclass


class Problem:
    """Kinds of problem the verifier names."""

    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    CHAIN_BROKEN = "chain broken"
    TRUNCATED = "truncated behind a checkpoint"
    REWRITTEN = "rewritten behind a checkpoint"
    BAD_SIGNATURE = "bad signature"
    BAD_CHECKPOINT = "unreadable checkpoint"
    # The chain is consistent, but nothing outside the database vouches for it (recently).
    NO_CHECKPOINT = "no checkpoint"
    STALE_CHECKPOINT = "stale checkpoint"


@dataclass
class Finding:
    kind: str
    message: str
    position: int | None = None
    source: str | None = None
    entry_id: int | None = None
    checkpoint: str | None = None

    def __str__(self) -> str:
        where = []
        if self.position is not None:
            where.append(f"position {self.position}")
        if self.source is not None and self.entry_id is not None:
            where.append(f"{self.source} entry #{self.entry_id}")
        if self.checkpoint:
            where.append(f"checkpoint {self.checkpoint}")
        return f"{', '.join(where)}: {self.kind}: {self.message}"
