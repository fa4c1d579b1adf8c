"""Where cardsuite keeps its safety state, and the CARDSUITE_* variables that move it.

Safety state is what must outlive a checkout, a ``rm -rf build`` and a change of folder: the brick guard's
record of keys that failed on a card (forgetting it lets the next run lock the card), the issuer's database
(cards, keys by derivation, pending personalisations) and the card inventory. It lives in one state
directory: ``$CARDSUITE_STATE``, else ``$XDG_STATE_HOME/cardsuite``, else ``~/.local/state/cardsuite`` (the
XDG Base Directory specification's state directory). Never under build/, never relative to the working
directory: a relative ``CARDSUITE_STATE`` is refused, a relative ``XDG_STATE_HOME`` ignored (as the XDG
specification says). The directory is created 0700 when something is first written, not when a path is
only computed: reading never creates anything.

Each variable is named here once, with its default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cardsuite.errors import ConfigurationError

ENV_STATE = "CARDSUITE_STATE"  # the state directory [default $XDG_STATE_HOME/cardsuite]
ENV_GUARD = "CARDSUITE_GP_GUARD"  # the brick guard's database [default <state>/gp-guard.db]
ENV_DB = "CARDSUITE_DB"  # the issuer's and merchant's database [default <state>/wallet.db]
ENV_INVENTORY = "CARDSUITE_INVENTORY"  # the inventory's URL [default sqlite:///<state>/inventory.db]

GUARD_FILE = "gp-guard.db"
WALLET_FILE = "wallet.db"
INVENTORY_FILE = "inventory.db"
STATE_MODE = 0o700  # card identities and failed-key records are nobody else's business


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """The state directory (not created: see ``make_private_parent``)."""
    env = os.environ if env is None else env
    configured = env.get(ENV_STATE)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_absolute():
            raise ConfigurationError(f"{ENV_STATE}={configured!r} is a relative path: give an absolute one "
                                     "(state relative to the working folder is forgotten when you change folder)")
        return path
    xdg = env.get("XDG_STATE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "cardsuite"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "state" / "cardsuite"


def guard_db(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env[ENV_GUARD]) if env.get(ENV_GUARD) else state_dir(env) / GUARD_FILE


def wallet_db(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env[ENV_DB]) if env.get(ENV_DB) else state_dir(env) / WALLET_FILE


def inventory_url(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get(ENV_INVENTORY) or f"sqlite:///{state_dir(env) / INVENTORY_FILE}"


def make_private_parent(path: Path) -> None:
    """Creates the folders above ``path`` that are missing, the last one 0700 (for a file about to be written)."""
    parent = path.parent
    if parent.is_dir():
        return
    parent.parent.mkdir(parents=True, exist_ok=True)
    try:
        parent.mkdir(mode=STATE_MODE)
    except FileExistsError:
        return
    os.chmod(parent, STATE_MODE)  # mkdir's mode goes through the umask
