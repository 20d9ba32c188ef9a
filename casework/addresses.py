"""Addresses of a list's rows, reversed once a process instead of once a row.

A row's address (a task's page, a case's page) is the same text for every row but its
ids: reversed once with sample ids, it is split around them, and each row's address is
the parts with the row's ids put back. Only for ids (integers, UUIDs), whose text is the
same in an address as ``str()`` gives it. The parts are kept for what ``reverse`` reads
besides the ids — the URL configuration, the script prefix, the language — and dropped
when a setting changes (a test's URL configuration); nothing of a request or a user.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import get_script_prefix, get_urlconf
from django.utils.translation import get_language

# Ids no row has, each found once in an address.
SAMPLE_INT = 987_654_321_013
SAMPLE_UUID = "00000000-0000-4000-8000-000000000000"


def address_parts(reverse: Callable[..., str], samples: Sequence) -> tuple[str, ...] | None:
    """The text of ``reverse(*samples)`` around each sample, in order; ``None`` when a
    sample's text is not found exactly once (the caller then reverses each row)."""
    address = reverse(*samples)
    parts = []
    for sample in map(str, samples):
        if address.count(sample) != 1:
            return None
        head, _sample, address = address.partition(sample)
        parts.append(head)
    parts.append(address)
    return tuple(parts)


def fill_address(parts: tuple[str, ...], values: Sequence) -> str:
    """The address of ``address_parts``' parts with ``values`` in the samples' places."""
    text = [parts[0]]
    for value, part in zip(values, parts[1:], strict=True):
        text += (str(value), part)
    return "".join(text)


_kept: dict[tuple, tuple[str, ...] | None] = {}


@receiver(setting_changed)
def _settings_changed(**kwargs) -> None:
    _kept.clear()


def kept_address_parts(
    key: Hashable, reverse: Callable[..., str], samples: Sequence
) -> tuple[str, ...] | None:
    """``address_parts(reverse, samples)``, made once a process for ``key`` (what names
    the address: a step, "case"), the URL configuration, the script prefix and the
    language."""
    kept_key = (key, get_urlconf(), get_script_prefix(), get_language())
    try:
        return _kept[kept_key]
    except KeyError:
        parts = _kept[kept_key] = address_parts(reverse, samples)
        return parts


def row_address(key: Hashable, reverse: Callable[..., str], samples: Sequence, values) -> str:
    """``reverse(*values)``, by the parts ``kept_address_parts`` keeps."""
    parts = kept_address_parts(key, reverse, samples)
    return reverse(*values) if parts is None else fill_address(parts, values)
