"""Where cardsuite keeps its safety state, and the CARDSUITE_* variables that move it.

Safety state is what must outlive a checkout, a ``rm -rf build`` and a change of folder: the brick guard's
record of keys that failed on a card (forgetting it lets the next run lock the card), the issuer's database
(cards, keys by derivation, pending personalisations) and the card inventory. It lives in one state
directory: ``$CARDSUITE_STATE``, else ``$XDG_STATE_HOME/cardsuite``, else ``~/.local/state/cardsuite`` (the
XDG Base Directory specification's state directory). Never under build/, never relative to the working
directory: a relative ``CARDSUITE_STATE`` is refused, a relative ``XDG_STATE_HOME`` ignored (as the XDG
specification says). The directory is created 0700 when something is first written, not when a path is
only computed: reading never creates anything.

Each variable is named here once, with its default; every other module reads the names from here (a test
fails on a ``"CARDSUITE_`` literal elsewhere, and on a name here that README or the option help does not
document). The CLI's options override the variable of the same name.
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

# -- where things are
ENV_ROOT = "CARDSUITE_ROOT"  # the checkout (a folder with applets/manifest.toml) [default: found from the cwd]
ENV_CACHE = "CARDSUITE_CACHE"  # downloaded SDKs and jars [default $XDG_CACHE_HOME/cardsuite]
ENV_JC_HOME = "CARDSUITE_JC_HOME"  # the Oracle Java Card kit [default cardsuite.local.toml, else the cache]
ENV_ANT_JAVACARD = "CARDSUITE_ANT_JAVACARD"  # ant-javacard.jar [default cardsuite.local.toml, else the cache]
ENV_GP_JAR = "CARDSUITE_GP_JAR"  # GlobalPlatformPro's gp.jar, for the comparison tests [default: none]
ENV_COVERAGE = "CARDSUITE_COVERAGE"  # a JaCoCo exec file: every simulator JVM records applet coverage into it

# -- the card and the link
ENV_CARD = "CARDSUITE_CARD"  # --card: sim, vpcd[:slot], reader:<name or index> [default sim]
ENV_TRACE = "CARDSUITE_TRACE"  # --trace: any value but "" and "0" traces APDUs (masked) [default off]
ENV_APDU_TIMEOUT = "CARDSUITE_APDU_TIMEOUT"  # --apdu-timeout, seconds per APDU on PC/SC [default 30]
ENV_AID = "CARDSUITE_AID"  # fs --aid: the file system application [default the ISO applet]
ENV_IIN = "CARDSUITE_IIN"  # --iin: the issuer identification number [default 940001; e-cash 941012]

# -- secrets (read through cardsuite.keysource; never from the command line)
ENV_PIN = "CARDSUITE_PIN"  # the cardholder's PIN [default: a prompt on the terminal]
ENV_NEW_PIN = "CARDSUITE_NEW_PIN"  # the new PIN of change-pin / unblock [default: a prompt]
ENV_PUK = "CARDSUITE_PUK"  # the PUK [default: a prompt]
ENV_GP_KEY = "CARDSUITE_GP_KEY"  # one GlobalPlatform key for ENC, MAC and DEK (hex); or the three below
ENV_GP_KEY_ENC = "CARDSUITE_GP_KEY_ENC"
ENV_GP_KEY_MAC = "CARDSUITE_GP_KEY_MAC"
ENV_GP_KEY_DEK = "CARDSUITE_GP_KEY_DEK"
ENV_GP_KVN = "CARDSUITE_GP_KVN"  # the key version number [default 0, the card's default set]
ENV_GP_KEY_PROFILE = "CARDSUITE_GP_KEY_PROFILE"  # --key-profile [default: none]
ENV_ISSUER_SECRET = "CARDSUITE_ISSUER_SECRET"  # the issuer master secret, hex [default: none]
ENV_ISSUER_KEY_FILE = "CARDSUITE_ISSUER_KEY_FILE"  # --issuer-key-file [default: none]
ENV_TRANSPORT_KEYS = "CARDSUITE_TRANSPORT_KEYS"  # a fresh wallet's transport keys, hex K_E || K_A [default: none]
ENV_SCMS_TOKEN = "CARDSUITE_SCMS_TOKEN"  # agent: the terminal token the SCMS administrator issued [default: none]
ENV_SCMS_PASSWORD = "CARDSUITE_SCMS_PASSWORD"  # scms init: the first administrator's password [default: a prompt]
ENV_SIM_KEYS = "CARDSUITE_SIM_KEYS"  # the simulated card manager's keys, ENC:MAC:DEK or one key (hex)
#                                      [default the public development keys: the simulator is a development card]

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
