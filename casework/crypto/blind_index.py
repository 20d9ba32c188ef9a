"""Blind index of the personnummer: a truncated HMAC-SHA256 under the blind-index key.

``INDEX_BITS`` is chosen in docs/adr/0004-field-encryption.md ("Blind index"):
22 bits, inside the CipherSweet planner's range for a national population
(about 1.6e7 numbers ever issued: 10.5 M living, people who died or left since
1947, samordningsnummer) so that at national scale an index value is shared by
about four numbers, while a lookup in a table of 1 M persons meets on average
0.24 false candidates, each ruled out by decrypting it.
"""

from __future__ import annotations

import hashlib
import hmac

from casework.crypto.keyring import Keyring

INDEX_BITS = 22
PERSONNUMMER_INDEX = "casework.person.personnummer"


def personnummer_index(keyring: Keyring, normalised: str) -> int:
    """The blind index (0 … 2**22 - 1) of a normalised 12-digit personnummer."""
    key = keyring.index_subkey(PERSONNUMMER_INDEX)
    digest = hmac.new(key, normalised.encode("ascii"), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - INDEX_BITS)
