"""Personalisers: what a deploy does to an installed application whose profile has a ``[personalise]``
table, found by the table's ``kind``. Each application package brings its own (the wallet's is
cardsuite.wallet.personaliser); the deploy knows only this interface.

A personaliser is made for one instance of one card, with keyword arguments (PersonaliserFactory), and
answers two questions: what the plan says (read only, ``plan``) and doing it (``personalise``). Both may
select the application: the deployer ends its card manager session before calling them. Neither prints;
both raise a CardsuiteError whose message says what a person has to do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from cardsuite.errors import ConfigurationError
from cardsuite.transport.base import Transport
from cardsuite.wallet.personaliser import WalletPersonaliser


class Personaliser(Protocol):
    def plan(self, transport: Transport, *, installed: bool, read_only: bool) -> tuple[bool, str]:
        """(done, what the plan says). ``installed``: the instance is on the card; ``read_only``: a plan,
        which writes nothing anywhere (not even a database migration)."""
        ...

    def personalise(self, transport: Transport, *, before_changes: Callable[[], None] | None = None) -> str:
        """Personalises the instance, or finishes a personalisation stopped part-way; the step's detail.
        Crash-safe: run again after an interruption anywhere, it finishes the job. ``before_changes``: called
        once what the card holds is read, before the first command that changes it (may raise: then nothing
        changed)."""
        ...


class PersonaliserFactory(Protocol):
    def __call__(self, *, spec: object, name: str, instance: bytes, params: bytes, chip: str, simulated: bool,
                 database: Path, secret: Callable[[str, str], str],
                 env: Mapping[str, str] | None = None) -> Personaliser:
        """``spec``: the profile's parsed ``[personalise]`` table; ``name``: the application's name in the
        profile; ``params``: its install parameters; ``chip``: the card's identity (CPLC or reader and ATR);
        ``simulated``: a simulated card (public development secrets allowed); ``database``: the issuer's
        records; ``secret(variable, what)``: a secret the profile names, from the environment."""
        ...


PERSONALISERS: dict[str, PersonaliserFactory] = {
    WalletPersonaliser.kind: WalletPersonaliser,  # type: ignore[dict-item]
}


def personaliser_for(kind: str) -> PersonaliserFactory:
    try:
        return PERSONALISERS[kind]
    except KeyError:
        known = ", ".join(sorted(PERSONALISERS))
        raise ConfigurationError(f"no personaliser for kind {kind!r} (known: {known})") from None
