"""An SCMS installation: its folder (``scms init --dir D``), what it holds and how each part is opened.

D/scms.toml      where the database is, the TLS files, the KMS token and the key sets cards are opened with
D/tls/           ca.pem (what agents pin), server.pem, server.key
D/kms/           SoftHSM2's configuration and tokens (when the token is SoftHSM2), the token's user PIN (0600)
D/scms.db        the database when it is SQLite; D/inventory.db the card inventory (cardsuite.deploy.inventory)

Administrators' passwords are hashed with argon2id (memory-hard); terminal tokens are random 32 bytes, stored
as their SHA-256 (a token is a key, not a password: no dictionary to slow down).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cardsuite.deploy.inventory import Inventory
from cardsuite.errors import ConfigurationError
from cardsuite.scms.db import Database
from cardsuite.scms.kms import SOFTHSM_MODULE, Kms, init_softhsm_token, softhsm_config
from cardsuite.scms.pki import make_ca_and_server
from cardsuite.settings import WALLET_FILE
from cardsuite.sim.bridge import DEVELOPMENT_KEY

CONFIG = "scms.toml"
TOKEN_LABEL = "cardsuite-scms"
ROLES = ("administrator", "operator", "auditor")
ISSUER_MASTER = "issuer-master"
TRANSPORT_KEY = "transport"
ISSUER_KVN = 0x30
PIN_KEY = "cardholder-pins"  # computes the wallet's one-time PIN and PUK (cardsuite.scms.ads)


@dataclass(frozen=True)
class KeySetConfig:
    """A key set cards are opened with: a token key ``label``, its diversification (None: static), kvn."""

    label: str
    kdf: str | None
    kvn: int


@dataclass(frozen=True)
class System:
    folder: Path
    database_url: str
    inventory_url: str
    module: Path
    token: str
    pin_file: Path
    softhsm_conf: Path | None
    card_keys: KeySetConfig
    card_type: str = "javacard"  # "simulated": the cards served may use the public development secrets
    issuer_keys: KeySetConfig = KeySetConfig("issuer-master", "kdf3", 0x30)  # what a rotation puts on a card

    @property
    def ca(self) -> Path:
        return self.folder / "tls" / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.folder / "tls" / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "tls" / "server.key"

    @property
    def wallet_db(self) -> Path:
        """The issuer's records of the wallets the ADS personalises (cardsuite.wallet.store)."""
        return self.folder / WALLET_FILE

    def database(self, *, write_behind: bool = False) -> Database:
        return Database(self.database_url, write_behind=write_behind)

    def kms(self, audit=None) -> Kms:  # noqa: ANN001 - an AuditSink
        if self.softhsm_conf is not None:
            os.environ.setdefault("SOFTHSM2_CONF", str(self.softhsm_conf))  # read by SoftHSM2 when loaded
        return Kms(self.module, self.token, self.pin_file.read_text().strip(), audit)


def load_system(folder: Path) -> System:
    path = folder / CONFIG
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"{folder} is no SCMS folder (no {CONFIG}): run `cardsuite scms init --dir "
                                 f"{folder}` first") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
    kms, keys, issuer = data["kms"], data["card_keys"], data.get("issuer", {})
    conf = kms.get("softhsm_conf")
    return System(folder, data["database"], data["inventory"], Path(kms["module"]), kms["token"],
                  folder / kms["pin_file"], folder / conf if conf else None,
                  KeySetConfig(keys["label"], keys.get("kdf"), int(keys.get("kvn", 0))),
                  data.get("card_type", "javacard"),
                  KeySetConfig(issuer.get("label", ISSUER_MASTER), issuer.get("kdf", "kdf3"),
                               int(issuer.get("kvn", ISSUER_KVN))))


def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def verify_password(stored: str, password: str) -> bool:
    from argon2 import PasswordHasher
    from argon2.exceptions import VerificationError

    try:
        return PasswordHasher().verify(stored, password)
    except VerificationError:
        return False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def init_system(folder: Path, *, admin: str, password: str, database_url: str | None = None,
                module: Path | None = None, token: str = TOKEN_LABEL, pin: str | None = None,
                hosts: tuple[str, ...] = ("127.0.0.1", "localhost"), master_kdf: str = "kdf3",
                development_transport_keys: bool = False) -> System:
    """A new SCMS in ``folder`` (which must not hold one). With no ``module``, a SoftHSM2 token in D/kms.
    ``development_transport_keys``: cards arrive with the public development keys (simulated cards), which
    go into the token as the static key set cards are opened with (two-key 3DES for SCP02 cards when the
    issuer master is emv or visa2, AES otherwise); otherwise the issuer master is."""
    if (folder / CONFIG).exists():
        raise ConfigurationError(f"{folder} already holds an SCMS ({CONFIG}); use another folder")
    if len(password) < 12:
        raise ConfigurationError("the administrator's password must have at least 12 characters")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    database_url = database_url or f"sqlite:///{folder / 'scms.db'}"
    inventory_url = database_url if database_url.startswith("postgres") else f"sqlite:///{folder / 'inventory.db'}"
    kms_dir = folder / "kms"
    kms_dir.mkdir(exist_ok=True, mode=0o700)
    pin_file = kms_dir / "user.pin"
    softhsm_conf = None
    if module is None:
        module = SOFTHSM_MODULE
        softhsm_conf = softhsm_config(kms_dir)
        pin = pin or secrets.token_hex(8)
        init_softhsm_token(softhsm_conf, token, pin, secrets.token_hex(8))
        os.environ["SOFTHSM2_CONF"] = str(softhsm_conf)
    elif pin is None:
        raise ConfigurationError("a PKCS#11 module given by path needs its token's user PIN (--pin-file)")
    pin_file.write_text(pin)
    os.chmod(pin_file, 0o600)
    make_ca_and_server(folder / "tls", list(hosts))
    keys = (KeySetConfig(TRANSPORT_KEY, None, 0) if development_transport_keys
            else KeySetConfig(ISSUER_MASTER, master_kdf, ISSUER_KVN))
    card_type = "simulated" if development_transport_keys else "javacard"
    lines = [f"database = {_toml_string(database_url)}", f"inventory = {_toml_string(inventory_url)}",
             f"card_type = {_toml_string(card_type)}  # simulated: development secrets allowed", "",
             "[kms]", f"module = {_toml_string(str(module))}", f"token = {_toml_string(token)}",
             'pin_file = "kms/user.pin"']
    if softhsm_conf is not None:
        lines.append('softhsm_conf = "kms/softhsm2.conf"')
    lines += ["", "[card_keys]  # the key set cards are opened with (a token label)",
              f"label = {_toml_string(keys.label)}", f"kvn = {keys.kvn}"]
    if keys.kdf:
        lines.append(f"kdf = {_toml_string(keys.kdf)}")
    lines += ["", "[issuer]  # the keys a rotation puts on a card in place of the ones it came with",
              f"label = {_toml_string(ISSUER_MASTER)}", f"kdf = {_toml_string(master_kdf)}", f"kvn = {ISSUER_KVN}"]
    (folder / CONFIG).write_text("\n".join(lines) + "\n")
    system = load_system(folder)
    with system.kms() as kms:
        kms.generate_master(ISSUER_MASTER, master_kdf, 128)
        kms.generate_mac_key(PIN_KEY)
        if development_transport_keys:  # 3DES for a 3DES issuer master (SCP02 cards), else AES (SCP03)
            kms.import_key(TRANSPORT_KEY, DEVELOPMENT_KEY, None, des=master_kdf in ("emv", "visa2"))
    # the inventory's tables made now, once: concurrent CREATE TABLE IF NOT EXISTS of a table that does not
    # exist yet can fail on PostgreSQL (two servers opening the inventory for their first requests)
    Inventory(system.inventory_url, station="scms-init").close()
    db = system.database()
    try:
        db.create()
        db.execute("INSERT INTO scms_users (name, password_hash, role, created_at) VALUES (?, ?, 'administrator', ?)",
                   (admin, hash_password(password), time.time()))
    finally:
        db.close()
    return system


def add_terminal(system: System, name: str) -> str:
    """A new terminal and its token (shown once: only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    db = system.database()
    try:
        if db.query("SELECT name FROM scms_terminals WHERE name = ?", (name,)):
            raise ConfigurationError(f"a terminal {name!r} exists already")
        db.execute("INSERT INTO scms_terminals (name, token_hash, created_at) VALUES (?, ?, ?)",
                   (name, token_hash(token), time.time()))
    finally:
        db.close()
    return token


def terminal_for_token(db: Database, token: str) -> str | None:
    rows = db.query("SELECT name FROM scms_terminals WHERE token_hash = ? AND revoked_at IS NULL",
                    (token_hash(token),))
    return rows[0][0] if rows else None


def revoke_terminal(system: System, name: str) -> None:
    db = system.database()
    try:
        if db.execute("UPDATE scms_terminals SET revoked_at = ? WHERE name = ?", (time.time(), name)) != 1:
            raise ConfigurationError(f"no terminal {name!r}")
    finally:
        db.close()
