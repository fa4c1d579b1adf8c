"""Hex as people write it, into bytes: the one parser for hex and AIDs from the command line, the environment,
profiles, the manifest and tool output.

One rule for separators everywhere: spaces (any whitespace) and colons may sit anywhere between the digits
and are dropped, so ``A0 00 00 01 51``, ``A0:00:00:01:51`` and ``A000000151`` are the same; what remains must
be an even number of hex digits. Nothing else is accepted (no ``0x``, no dashes). An error names ``what`` and
repeats the text, except for values that may be keys or carry them (``secret=True``): those are never
repeated, only their length.
"""

from __future__ import annotations

from collections.abc import Collection

from cardsuite.errors import ConfigurationError

AID_LENGTH = (5, 16)  # ISO/IEC 7816-4 8.2.1.2: RID (5 bytes) and a PIX of up to 11
_SEPARATORS = str.maketrans("", "", ": \t\r\n\f\v")


class HexError(ConfigurationError, ValueError):
    """Text that is not the hex asked for; the message names the value and never repeats a secret one."""


def _lengths(length: int | Collection[int] | None, min_length: int | None, max_length: int | None) -> str:
    if isinstance(length, int):
        return f"{length} bytes"
    if length is not None:
        *rest, last = sorted(length)
        return f"{', '.join(map(str, rest))} or {last} bytes" if rest else f"{last} bytes"
    if min_length is not None and max_length is not None:
        return f"{min_length} to {max_length} bytes"
    return f"at least {min_length} bytes" if min_length is not None else f"at most {max_length} bytes"


def _decode(text: str, shown: str, hidden: str) -> bytes:
    try:
        return bytes.fromhex(text.translate(_SEPARATORS))
    except ValueError:
        raise HexError(f"{shown} is not hex{hidden}") from None


def parse_hex(text: str, what: str, *, length: int | Collection[int] | None = None, min_length: int | None = None,
              max_length: int | None = None, secret: bool = False) -> bytes:
    """``text`` as bytes, or HexError naming ``what``. ``length`` (one or several allowed lengths) or
    ``min_length``/``max_length`` bound the number of bytes; ``secret`` keeps the text out of the message."""
    shown = what if secret else f"{what} {text!r}"
    value = _decode(text, shown, " (the value is not shown)" if secret else "")
    n = len(value)
    if length is not None:
        fits = n == length if isinstance(length, int) else n in length
    else:
        fits = (min_length is None or n >= min_length) and (max_length is None or n <= max_length)
    if not fits:
        raise HexError(f"{shown} must be {_lengths(length, min_length, max_length)}, got {n}")
    return value


def parse_aid(text: str, what: str) -> bytes:
    """An application identifier, 5 to 16 bytes, or HexError naming ``what``."""
    aid = _decode(text, f"{what} {text!r}", "")
    low, high = AID_LENGTH
    if not low <= len(aid) <= high:
        raise HexError(f"{what} {text!r} has {len(aid)} bytes; an AID has {low} to {high} bytes")
    return aid


__all__ = ["AID_LENGTH", "HexError", "parse_aid", "parse_hex"]
