"""The exception root of cardsuite. Every error a user can hit is a CardsuiteError with a clear message."""

from __future__ import annotations


class CardsuiteError(Exception):
    """Root of every cardsuite error; the message is meant for the user as it is."""


def first_line(exc: BaseException) -> str:
    """A driver's message in one line (PostgreSQL's add the statement and a caret beneath it)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ConfigurationError(CardsuiteError):
    """A manifest, profile, option or environment value is wrong."""


class ToolchainError(CardsuiteError):
    """A build tool is missing, mismatched or reported an error."""


class TransportError(CardsuiteError):
    """The link to the card failed (no reader, no card, card removed, simulator gone)."""


class CardTornError(TransportError):
    """Power was lost in the middle of a command (simulated tearing); reset the card to go on."""
