"""KMS: the issuer's GlobalPlatform keys in a PKCS#11 token (SoftHSM2 by default, any module by path).

Master keys are generated in the token, sensitive and not extractable, with the one capability they need:
CKA_DERIVE. A card's own keys are derived inside the token (C_DeriveKey), as session objects that die with the
session:

- EMV CPG 2.1 and VISA2 (cardsuite.gp.keys): 3DES-ECB of 16 bytes under the master: CKM_DES3_ECB_ENCRYPT_DATA.
- KDF3: AES-CMAC of one block (1 + 5 + 10 bytes of fixed data, SP 800-108 counter mode) per 16 bytes of key.
  PKCS#11 has no SP 800-108 mechanism SoftHSM2 offers, but CMAC of a single complete block M is
  AES(K, M xor K1) (SP 800-38B 6.2) with K1 from L = AES(K, 0): CKM_AES_ECB_ENCRYPT_DATA of M xor K1 is the
  derived key. L is computed once, when the master is made, and kept beside it as a data object: L is one
  cipher output at a public point, like a key check value, and tells nothing about AES(K, x) elsewhere.
- SCP03 session keys ([AmD] 6.2.1, CMAC over two or three blocks): the chaining value AES-CBC(K, M1..Mn-1) is
  computed with the card key (C_Encrypt), then CKM_AES_ECB_ENCRYPT_DATA of it xor Mn xor K1 is the session key.
  Cryptograms and C-MAC/R-MAC are C_Sign with CKM_AES_CMAC, command encryption C_Encrypt (AES-CBC), all with
  keys that never leave the token. A run's C-MAC chain ([AmD] 6.2.5: each command's CMAC over the one before
  it and the command) is one C_Encrypt (AES-CBC, zero IV) under S-MAC: the CBC state after a command's blocks
  (the last xor K1, or padded and xor K2) is its CMAC, and a zero block next makes that state the next
  command's first block; K1 from L = AES(S-MAC, 0), one C_Encrypt (AES-ECB) a channel. What leaves the token
  beyond the MACs: the CBC states between (to this process only, as the SCP02 chaining values below).
- SCP02 session keys ([GPCS] E.4.1: 3DES-CBC, zero ICV, of 16 bytes under the static key):
  CKM_DES3_CBC_ENCRYPT_DATA. The C-MAC is ISO 9797-1 MAC algorithm 3 (retail MAC), which PKCS#11 lacks, built
  from what it has: single DES under K1, the left half of the C-MAC session key, runs as 3DES under the key
  K1 K1, and K1 is E_K(block 1) (the first block of a CBC with a zero ICV), so K1 K1 is derived beside the
  session key with CKM_DES3_ECB_ENCRYPT_DATA of block 1 twice. Then the MAC is C_Encrypt(CKM_DES3_CBC) under
  K1 K1 of all blocks but the last, and C_Encrypt(CKM_DES3_ECB) under the session key of the last block xor
  that chaining value; the ICV encryption of i=15/55 is CKM_DES3_ECB under K1 K1. Cryptograms (3DES CBC-MAC)
  and C-DECRYPTION are CKM_DES3_CBC under S-ENC, sensitive data CKM_DES3_ECB under S-DEK. What leaves the
  token: cryptograms, MACs, ciphertext, and the single-DES chaining value of each C-MAC and the encrypted
  ICV (to this process only: never sent, recorded or logged). SoftHSM2 sets the DES parity bits of a derived
  key; DES ignores them.

A cardholder's one-time PIN and PUK (cardsuite.scms.ads) are the AES-CMAC (C_Sign) of the card's context
under a key that can do nothing else (generate_mac_key): computed again for a re-run, so a post-issuance
that stops between the wallet's personalisation and the cardholder's PIN step is finished by the next.

Every key use goes to the audit callback (the SCMS writes it to its audit table).

Threads: one call into the module at a time per process (_serialised). python-pkcs11 (0.10) initialises the
module with C_Initialize(NULL_PTR), which tells it that the application will not call it from several
threads at once (PKCS#11 v2.40, C_Initialize); SoftHSM2 then disables its own mutexes, yet python-pkcs11
releases the GIL inside every call. Concurrent ADS runs (each with a session of its own) then raced inside
SoftHSM2's session, handle and object managers: CKR_GENERAL_ERROR for 10 to 15 of 50 terminals at the bench,
a segmentation fault in a test. Not transient, so not retried.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from cardsuite.crypto.aes import aes_ecb
from cardsuite.crypto.des import pad_m2
from cardsuite.errors import CardsuiteError, ConfigurationError
from cardsuite.gp.keys import DIVERSIFICATIONS, KDD_LENGTH
from cardsuite.gp.scp import (
    SCP02,
    SCP02_DEK,
    SCP03,
    AesOperations,
    DesOperations,
    GPInitializeUpdateResponse,
    SecureChannel,
    SecureChannelError,
)

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
SOFTHSM_UTIL = "softhsm2-util"
_KEY_NUMBERS = {"enc": 0x01, "mac": 0x02, "dek": 0x03}  # as cardsuite.gp.keys: EMV CPG 2.1 5.4.2
_SUBKEY_SUFFIX = ".cmac-l"  # the data object holding L = AES(K, 0) of an AES master

AuditSink = Callable[[str, str, str], None]  # operation, key label, detail (never a key value)


class KmsError(CardsuiteError):
    """The token refused, lacks a key, or cannot be opened."""


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise KmsError("the KMS needs python-pkcs11: pip install 'cardsuite[scms]'") from None
    return pkcs11


# Every call into the PKCS#11 module holds this lock (see the module's doc: the module runs without its own
# locking). Reentrant: a Kms method calls others. Token operations take micro- to milliseconds, so
# serialising them costs little beside the card and the network.
_TOKEN_CALLS = threading.RLock()
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _serialised(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """``method`` holding _TOKEN_CALLS; a refusal of the module becomes a KmsError naming the operation (a
    bare PKCS11Error's text is empty: a request failed with the reason 'GeneralError: ')."""
    @functools.wraps(method)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _TOKEN_CALLS:
            try:
                return method(*args, **kwargs)
            except _pkcs11().exceptions.PKCS11Error as exc:
                raise KmsError(f"the KMS token refused {method.__name__.strip('_')}: "
                               f"{type(exc).__name__} {exc}".strip()) from exc
    return call


# PKCS#11 logs in per application, not per session (C_Login: CKR_USER_ALREADY_LOGGED_IN for the second of
# two concurrent sessions, and the last session's C_CloseSession logs every other one out). So the process
# logs in once through a session it keeps open, and every Kms opens sessions of its own that share that
# login (seen with 50 terminals on one server: concurrent ADS runs could not open the token, or lost its keys).
_LOGINS: dict[tuple[str, str], Any] = {}
_LOGIN_LOCK = threading.Lock()


def _log_in_once(token: Any, pin: str) -> None:
    key = (str(token.slot.slot_id), token.label)
    with _LOGIN_LOCK:
        if key not in _LOGINS:
            _LOGINS[key] = token.open(user_pin=pin, rw=True)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def cmac_subkey(l_value: bytes) -> bytes:
    """K1 of SP 800-38B 6.1: L shifted left one bit, xor 0x87 when its top bit was set."""
    shifted = ((int.from_bytes(l_value, "big") << 1) & ((1 << 128) - 1)).to_bytes(16, "big")
    return _xor(shifted, bytes(15) + b"\x87") if l_value[0] & 0x80 else shifted


def _cmac_last_block(message: bytes, k1: bytes, k2: bytes) -> bytes:
    """SP 800-38B 6.2 steps 3-4: a whole last block xor K1, else padded (80 00..) and xor K2."""
    if message and not len(message) % 16:
        return message[:-16] + _xor(message[-16:], k1)
    padded = pad_m2(message, 16)
    return padded[:-16] + _xor(padded[-16:], k2)


def _string_data(data: bytes, iv: bytes | None = None) -> tuple[Any, bytes]:
    """CK_KEY_DERIVATION_STRING_DATA (pData, ulLen) for the DES3 ENCRYPT_DATA mechanisms, which python-pkcs11
    passes through as raw bytes; with ``iv``, CK_DES_CBC_ENCRYPT_DATA_PARAMS (iv[8], pData, ulLen) for
    CKM_DES3_CBC_ENCRYPT_DATA. The buffer must outlive the call."""
    buffer = ctypes.create_string_buffer(data, len(data))
    return buffer, (iv or b"") + struct.pack("PL", ctypes.addressof(buffer), len(data))


@dataclass(frozen=True)
class DesSessionKey:
    """An SCP02 session key in the token; the C-MAC key also as K1 K1 (single DES K1, see the module's doc)."""

    key: Any = field(repr=False)
    k1: Any = field(default=None, repr=False)


# ---------------------------------------------------------------- SoftHSM2


def softhsm_config(folder: Path) -> Path:
    """A SoftHSM2 configuration keeping its tokens in ``folder`` (SOFTHSM2_CONF names it)."""
    tokens = folder / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    return conf


def init_softhsm_token(conf: Path, label: str, pin: str, so_pin: str) -> None:
    """softhsm2-util --init-token in the free slot. The PINs go in the environment of the child only as
    arguments softhsm2-util requires; they are random and written to the system's private folder."""
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    try:
        done = subprocess.run([SOFTHSM_UTIL, "--init-token", "--free", "--label", label, "--pin", pin,
                               "--so-pin", so_pin], env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise KmsError(f"{SOFTHSM_UTIL} is missing: apt-get install softhsm2 (or give --pkcs11-module)") from None
    if done.returncode != 0:
        raise KmsError(f"{SOFTHSM_UTIL} --init-token failed: {(done.stderr or done.stdout).strip()}")


# ---------------------------------------------------------------- the token


@dataclass
class Kms:
    """An open, logged-in session on the token holding the issuer's keys."""

    module: Path
    token_label: str
    pin: str = field(repr=False)
    audit: AuditSink | None = None
    _session: Any = field(default=None, repr=False)
    # an AES-192 card key made wrappable -> the 32-byte object its PUT KEY block is wrapped from (see wrap)
    _wrap_forms: dict[int, Any] = field(default_factory=dict, repr=False)
    # the keys found by label in this session: a post-issuance looks its masters up ~6 times, each a
    # C_FindObjects search of the whole token (2026-12-03: ~1.4 ms a request). Token keys are never destroyed
    # or relabelled here, so a key found stays found; a label not found is searched again.
    _found: dict[str, Any] = field(default_factory=dict, repr=False)

    @_serialised
    def open(self) -> Kms:
        pkcs11 = _pkcs11()
        if not self.module.is_file():
            raise KmsError(f"no PKCS#11 module at {self.module}")
        try:
            token = pkcs11.lib(str(self.module)).get_token(token_label=self.token_label)
            _log_in_once(token, self.pin)
            self._session = token.open(rw=True)
        except pkcs11.exceptions.NoSuchToken:
            raise KmsError(f"no token {self.token_label!r} in {self.module}") from None
        except pkcs11.exceptions.PKCS11Error as exc:
            raise KmsError(f"cannot open the token {self.token_label!r}: {type(exc).__name__}") from None
        return self

    @_serialised
    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
            self._wrap_forms.clear()
            self._found.clear()

    def __enter__(self) -> Kms:
        return self.open() if self._session is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def session(self) -> Any:
        if self._session is None:
            raise KmsError("the KMS token is not open")
        return self._session

    def _audit(self, operation: str, label: str, detail: str = "") -> None:
        if self.audit is not None:
            self.audit(operation, label, detail)

    # -- master keys
    def _master_template(self, label: str) -> dict:
        a = _pkcs11().Attribute
        return {a.LABEL: label, a.TOKEN: True, a.PRIVATE: True, a.SENSITIVE: True, a.EXTRACTABLE: False,
                a.DERIVE: True, a.ENCRYPT: False, a.DECRYPT: False, a.SIGN: False, a.VERIFY: False,
                a.WRAP: False, a.UNWRAP: False, a.MODIFIABLE: False}

    @_serialised
    def generate_master(self, label: str, kdf: str, bits: int = 128) -> None:
        """A new master key in the token: two-key 3DES for emv/visa2, AES (128/192/256) for kdf3."""
        pkcs11 = _pkcs11()
        self._check_new(label, kdf)
        template = self._master_template(label)
        if kdf == "kdf3":
            # generated able to encrypt exactly once, for L; then CKA_ENCRYPT is taken away before it is
            # stored as the master (SoftHSM2 lets a session key be copied with changed attributes)
            scratch = self.session.generate_key(pkcs11.KeyType.AES, bits, template={
                **template, pkcs11.Attribute.TOKEN: False, pkcs11.Attribute.ENCRYPT: True,
                pkcs11.Attribute.MODIFIABLE: True, pkcs11.Attribute.LABEL: label + ".new"})
            l_value = scratch.encrypt(bytes(16), mechanism=pkcs11.Mechanism.AES_ECB)
            scratch.copy({pkcs11.Attribute.TOKEN: True, pkcs11.Attribute.ENCRYPT: False,
                          pkcs11.Attribute.LABEL: label, pkcs11.Attribute.MODIFIABLE: False})
            scratch.destroy()
            self._store_subkey(label, l_value)
        else:
            if bits != 128:
                raise KmsError(f"{kdf} masters are two-key 3DES (128 bits), not {bits}")
            self.session.generate_key(pkcs11.KeyType.DES2, template=template)
        self._audit("generate", label, f"{kdf} master, {bits} bits, not extractable")

    @_serialised
    def generate_mac_key(self, label: str) -> None:
        """A new AES-256 key in the token that does nothing but AES-CMAC (C_Sign), not extractable: the
        one-time secrets of a card are its CMACs of the card's context (one_time_secret)."""
        pkcs11 = _pkcs11()
        self._check_new(label, None)
        template = {**self._master_template(label), pkcs11.Attribute.DERIVE: False, pkcs11.Attribute.SIGN: True}
        self.session.generate_key(pkcs11.KeyType.AES, 256, template=template)
        self._audit("generate", label, "AES-256 CMAC key, not extractable")

    @_serialised
    def one_time_secret(self, label: str, context: bytes, what: str) -> bytes:
        """16 bytes: the AES-CMAC of ``context`` under the key ``label`` (generate_mac_key): a secret the
        token can compute again from the same context, and nobody without the key."""
        out = bytes(self.key(label).sign(context, mechanism=_pkcs11().Mechanism.AES_CMAC))
        self._audit("derive", label, what)
        return out

    @_serialised
    def import_key(self, label: str, value: bytes, kdf: str | None, *, des: bool = False) -> None:
        """A key given as bytes (a test master key, a card vendor's transport keys): stored like a generated
        one. ``kdf`` None: a static key (used for every card as it is), AES unless ``des`` (two-key 3DES,
        for SCP02 cards); the masters of emv and visa2 are 3DES, of kdf3 AES."""
        pkcs11 = _pkcs11()
        self._check_new(label, kdf)
        a = pkcs11.Attribute
        des = kdf in ("emv", "visa2") or kdf is None and des
        if des and len(value) != 16 or not des and len(value) not in (16, 24, 32):
            raise KmsError(f"key {label}: {len(value)} bytes do not make a {'3DES' if des else 'AES'} key")
        template = {**self._master_template(label), a.CLASS: pkcs11.ObjectClass.SECRET_KEY,
                    a.KEY_TYPE: pkcs11.KeyType.DES2 if des else pkcs11.KeyType.AES, a.VALUE: value}
        if kdf is None:  # a static key: the card's key itself (ENC, MAC and DEK), derived into session keys
            template.update({a.ENCRYPT: True, a.WRAP: True})
        self.session.create_object(template)
        if not des:
            self._store_subkey(label, aes_ecb(value, bytes(16)))
        self._audit("import", label, f"{kdf or 'static'} key, {len(value) * 8} bits")

    def _check_new(self, label: str, kdf: str | None) -> None:
        if kdf is not None and kdf not in DIVERSIFICATIONS:
            raise ConfigurationError(f"key diversification {kdf!r}: valid are {', '.join(DIVERSIFICATIONS)}")
        if self.find(label) is not None:
            raise KmsError(f"the token already holds a key {label!r}")

    @_serialised
    def _store_subkey(self, label: str, l_value: bytes) -> None:
        a = _pkcs11().Attribute
        self.session.create_object({a.CLASS: _pkcs11().ObjectClass.DATA, a.LABEL: label + _SUBKEY_SUFFIX,
                                    a.TOKEN: True, a.PRIVATE: True, a.VALUE: l_value})

    @_serialised
    def find(self, label: str) -> Any | None:
        if label in self._found:
            return self._found[label]
        pkcs11 = _pkcs11()
        found = list(self.session.get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.SECRET_KEY,
                                               pkcs11.Attribute.LABEL: label}))
        if not found:
            return None
        self._found[label] = found[0]
        return found[0]

    def key(self, label: str) -> Any:
        found = self.find(label)
        if found is None:
            raise KmsError(f"the token holds no key {label!r}")
        return found

    @_serialised
    def labels(self) -> list[str]:
        pkcs11 = _pkcs11()
        objects = self.session.get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.SECRET_KEY})
        return sorted(o.label for o in objects if not o[pkcs11.Attribute.LABEL].endswith(".new"))

    @_serialised
    def _subkey_l(self, label: str) -> bytes:
        pkcs11 = _pkcs11()
        found = list(self.session.get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.DATA,
                                               pkcs11.Attribute.LABEL: label + _SUBKEY_SUFFIX}))
        if not found:
            raise KmsError(f"the AES key {label!r} has no CMAC subkey object: import or generate it through the KMS")
        return bytes(found[0][pkcs11.Attribute.VALUE])

    # -- what a card gets
    def _session_template(self, derive: bool = False, wrappable: bool = False) -> dict:
        """A card's static keys derive its session keys and wrap new keys (the DEK); session keys do
        neither. ``wrappable``: new card keys for PUT KEY, which leave the token only wrapped under the DEK."""
        a = _pkcs11().Attribute
        return {a.TOKEN: False, a.SENSITIVE: True, a.EXTRACTABLE: wrappable, a.ENCRYPT: True, a.DECRYPT: True,
                a.SIGN: True, a.VERIFY: True, a.DERIVE: derive, a.WRAP: derive, a.UNWRAP: False}

    @_serialised
    def derive_card_keys(self, label: str, kdf: str, kdd: bytes, *, wrappable: bool = False) -> dict[str, Any]:
        """The card's ENC, MAC and DEK (session objects) from the master ``label`` and the card's key
        diversification data, as cardsuite.gp.keys defines each diversification."""
        pkcs11 = _pkcs11()
        if len(kdd) != KDD_LENGTH:
            raise KmsError(f"key diversification data has {KDD_LENGTH} bytes, got {len(kdd)}")
        master = self.key(label)
        keys: dict[str, Any] = {}
        if kdf in ("emv", "visa2"):
            six = kdd[4:10] if kdf == "emv" else kdd[0:2] + kdd[4:8]
            for role, k in _KEY_NUMBERS.items():
                buffer, param = _string_data(six + bytes((0xF0, k)) + six + bytes((0x0F, k)))
                keys[role] = master.derive_key(
                    pkcs11.KeyType.DES2, 128, mechanism=pkcs11.Mechanism.DES3_ECB_ENCRYPT_DATA, mechanism_param=param,
                    template={**self._session_template(True, wrappable),
                              pkcs11.Attribute.VALUE_LEN: pkcs11.DEFAULT})
                del buffer
        elif kdf == "kdf3":
            k1 = cmac_subkey(self._subkey_l(label))
            length = master[pkcs11.Attribute.VALUE_LEN]
            for role, k in _KEY_NUMBERS.items():
                blocks = b"".join(_xor(bytes((counter, 0, 0, 0, k, 0)) + kdd, k1)
                                  for counter in range(1, (length + 15) // 16 + 1))
                keys[role] = master.derive_key(pkcs11.KeyType.AES, length * 8,
                                               mechanism=pkcs11.Mechanism.AES_ECB_ENCRYPT_DATA, mechanism_param=blocks,
                                               template=self._session_template(True, wrappable))
                if wrappable and length % 16:  # AES-192: the key and the rest of its last CMAC block (see wrap)
                    self._wrap_forms[keys[role].handle] = master.derive_key(
                        pkcs11.KeyType.AES, len(blocks) * 8, mechanism=pkcs11.Mechanism.AES_ECB_ENCRYPT_DATA,
                        mechanism_param=blocks, template=self._wrap_form_template())
        else:
            raise ConfigurationError(f"key diversification {kdf!r}: valid are {', '.join(DIVERSIFICATIONS)}")
        self._audit("derive", label, f"{kdf} card keys for KDD {kdd[:4].hex().upper()}..")
        return keys

    @_serialised
    def cmac_derive(self, key: Any, label: str, messages: list[bytes], length: int) -> Any:
        """A session key (a session object) of ``length`` bytes: the AES-CMACs of ``messages`` (whole blocks)
        under ``key``, concatenated and cut; see the module's doc for how the token computes them."""
        pkcs11 = _pkcs11()
        k1 = cmac_subkey(key.encrypt(bytes(16), mechanism=pkcs11.Mechanism.AES_ECB))
        blocks = b""
        for message in messages:
            if len(message) % 16 or not message:
                raise KmsError("the token's CMAC derivation takes whole AES blocks")
            chain = bytes(16)
            if len(message) > 16:
                chain = key.encrypt(message[:-16], mechanism=pkcs11.Mechanism.AES_CBC,
                                    mechanism_param=bytes(16))[-16:]
            blocks += _xor(_xor(chain, message[-16:]), k1)
        self._audit("derive", label, f"session key, {length * 8} bits")
        return key.derive_key(pkcs11.KeyType.AES, length * 8, mechanism=pkcs11.Mechanism.AES_ECB_ENCRYPT_DATA,
                              mechanism_param=blocks, template=self._session_template())

    @_serialised
    def des_derive(self, key: Any, label: str, data: bytes, *, with_k1: bool = False,
                   wrapping: bool = False) -> DesSessionKey:
        """An SCP02 session key (a session object): 3DES-CBC with a zero ICV of the 16 bytes of derivation data
        under the static ``key`` ([GPCS] E.4.1), by CKM_DES3_CBC_ENCRYPT_DATA; ``with_k1``: also K1 K1 by
        CKM_DES3_ECB_ENCRYPT_DATA of the first block twice (E_K(block 1) is the session key's left half);
        ``wrapping``: the session DEK, which wraps new keys (wrap_des)."""
        pkcs11 = _pkcs11()
        if len(data) != 16:
            raise KmsError("SCP02 derivation data has 16 bytes")
        template = {**self._session_template(), pkcs11.Attribute.VALUE_LEN: pkcs11.DEFAULT,
                    pkcs11.Attribute.WRAP: wrapping}
        buffer, param = _string_data(data, bytes(8))
        session = key.derive_key(pkcs11.KeyType.DES2, 128, mechanism=pkcs11.Mechanism.DES3_CBC_ENCRYPT_DATA,
                                 mechanism_param=param, template=template)
        del buffer
        k1 = None
        if with_k1:
            buffer, param = _string_data(data[:8] * 2)
            k1 = key.derive_key(pkcs11.KeyType.DES2, 128, mechanism=pkcs11.Mechanism.DES3_ECB_ENCRYPT_DATA,
                                mechanism_param=param, template=template)
            del buffer
        self._audit("derive", label, "SCP02 session key" + (" and its K1" if with_k1 else ""))
        return DesSessionKey(session, k1)

    def _wrap_form_template(self) -> dict:
        """Good for nothing but being wrapped: no cipher, MAC or derivation under it."""
        a = _pkcs11().Attribute
        return {a.TOKEN: False, a.SENSITIVE: True, a.EXTRACTABLE: True, a.ENCRYPT: False, a.DECRYPT: False,
                a.SIGN: False, a.VERIFY: False, a.DERIVE: False, a.WRAP: False, a.UNWRAP: False}

    @_serialised
    def wrap(self, dek: Any, key: Any, label: str) -> bytes:
        """``key`` encrypted under ``dek`` with AES-CBC and a zero ICV ([AmD] 7.2.3: PUT KEY's key data under
        the static DEK), by C_WrapKey: the new key's bytes exist outside the token only so encrypted.

        An AES-192 key is padded to two blocks first ([GPCS] 11.8.2.3: the key's length, then the key data
        encrypted in whole blocks; the card keeps the first length bytes). C_WrapKey of 24 bytes with
        CKM_AES_CBC fails (SoftHSM2 2.6.1: CKR_GENERAL_ERROR), CKM_AES_CBC_PAD is no wrapping mechanism there and
        would pad with 08s, and CKM_AES_KEY_WRAP(_PAD) is RFC 3394/5649, not what the card decrypts. So the
        wrapped object is the 32-byte one derived beside the key from the same KDF3 blocks: the key, then the 8
        bytes of its last CMAC block that the key leaves unused, as unpredictable as the key to anyone without
        the master, and seen only by the card, which drops them (where cardsuite.gp.perso pads with random
        bytes: PKCS#11 has no mechanism to join token bytes with host bytes in SoftHSM2)."""
        pkcs11 = _pkcs11()
        length = int(key[pkcs11.Attribute.VALUE_LEN])
        if length % 16:
            form = self._wrap_forms.get(key.handle)
            if form is None:
                raise KmsError(f"key {label}: an AES-{length * 8} key is wrapped padded, and only card keys "
                               "derived here for wrapping (derive_card_keys(..., wrappable=True)) have a padded form")
            key = form
        self._audit("wrap", label, "a new card key under the card's DEK (PUT KEY)")
        return bytes(dek.wrap_key(key, mechanism=pkcs11.Mechanism.AES_CBC, mechanism_param=bytes(16)))

    @_serialised
    def wrap_des(self, dek: DesSessionKey, key: Any, label: str) -> bytes:
        """A 3DES ``key`` encrypted under the SCP02 session DEK with 3DES-ECB ([GPCS] E.4.7) by C_WrapKey
        (CKM_DES3_ECB). SoftHSM2 2.6.1 has no DES mechanism for C_WrapKey (CKR_MECHANISM_INVALID), and
        C_Encrypt cannot take a key as its input: with it, token keys cannot be put on an SCP02 card."""
        pkcs11 = _pkcs11()
        try:
            wrapped = bytes(dek.key.wrap_key(key, mechanism=pkcs11.Mechanism.DES3_ECB))
        except pkcs11.exceptions.MechanismInvalid:
            raise KmsError("PUT KEY of token keys over SCP02 needs C_WrapKey with CKM_DES3_ECB (3DES keys under "
                           f"the session DEK), which the token {self.token_label!r} lacks") from None
        self._audit("wrap", label, "a new card key under the session DEK (PUT KEY, SCP02)")
        return wrapped

    @_serialised
    def key_length(self, key: Any) -> int:
        return int(key[_pkcs11().Attribute.VALUE_LEN])

    @_serialised
    def key_type(self, label: str) -> str:
        """"aes" or "3des": what the key ``label`` is (its CKA_KEY_TYPE)."""
        return self.key_type_of(self.key(label))

    @_serialised
    def key_type_of(self, key: Any) -> str:
        return "aes" if key.key_type == _pkcs11().KeyType.AES else "3des"

    @_serialised
    def check_value(self, key: Any) -> bytes:
        """A full-block check value: 3DES-ECB of 8 zero bytes or AES-ECB of 16 bytes 01 ([GPCS] B.6, [AmD]
        7.2.4 take its first 3 bytes), for comparing a token key with a known one without reading it."""
        pkcs11 = _pkcs11()
        if key.key_type == pkcs11.KeyType.AES:
            return key.encrypt(bytes([1]) * 16, mechanism=pkcs11.Mechanism.AES_ECB)
        return key.encrypt(bytes(8), mechanism=pkcs11.Mechanism.DES3_ECB)


# ---------------------------------------------------------------- keys as the GP client sees them


class _TokenKeyUses:
    """The token's secure-channel operations for one key set: each use counted and in the audit log."""

    def __init__(self, kms: Kms, label: str) -> None:
        self.kms = kms
        self.label = label
        self.uses = 0

    def _use(self, operation: str) -> None:
        self.uses += 1
        self.kms._audit(operation, self.label, "")


class TokenAes(_TokenKeyUses, AesOperations):
    """SCP03's operations ([AmD] 6.2) on token keys: nothing but cryptograms, MACs and ciphertext leave it."""

    def __init__(self, kms: Kms, label: str) -> None:
        super().__init__(kms, label)
        self._subkeys: dict[int, bytes] = {}  # a key's handle -> its CMAC subkey K1 (cmac_chain)

    @_serialised
    def key_bits(self, key: Any) -> int:
        return int(key[_pkcs11().Attribute.VALUE_LEN]) * 8

    def _fixed(self, constant: int, bits: int, counter: int, context: bytes) -> bytes:
        return bytes(11) + bytes([constant, 0]) + bits.to_bytes(2, "big") + bytes([counter]) + context

    def derive(self, key: Any, constant: int, bits: int, context: bytes) -> Any:
        messages = [self._fixed(constant, bits, c, context) for c in range(1, (bits + 127) // 128 + 1)]
        return self.kms.cmac_derive(key, self.label, messages, bits // 8)

    def kdf(self, key: Any, constant: int, bits: int, context: bytes) -> bytes:
        self._use("cryptogram")
        out = b"".join(self.cmac(key, self._fixed(constant, bits, c, context), audit=False)
                       for c in range(1, (bits + 127) // 128 + 1))
        return out[: bits // 8]

    @_serialised
    def cmac(self, key: Any, data: bytes, audit: bool = True) -> bytes:
        if audit:
            self._use("mac")
        return bytes(key.sign(data, mechanism=_pkcs11().Mechanism.AES_CMAC))

    @_serialised
    def cmac_chain(self, key: Any, chaining_value: bytes, messages: Sequence[bytes]) -> list[bytes]:
        """A run's C-MAC chain in one C_Encrypt (AES-CBC, zero IV), not a C_Sign per command (see the
        module's doc): 90 commands' C-MACs a post-issuance's LOAD run, each C_Sign ~27 us in a serve process."""
        if len(messages) < 2:
            return super().cmac_chain(key, chaining_value, messages)
        pkcs11 = _pkcs11()
        k1 = self._subkeys.get(key.handle)
        if k1 is None:  # SP 800-38B 6.1: from L = AES(K, 0), as the token's own CMAC computes it for each C_Sign
            zero = bytes(key.encrypt(bytes(16), mechanism=pkcs11.Mechanism.AES_ECB))
            k1 = self._subkeys[key.handle] = cmac_subkey(zero)
        k2 = cmac_subkey(k1)
        stream, ends = bytearray(chaining_value), []
        for index, message in enumerate(messages):
            if index:  # a zero block: AES(state xor 0), the previous CMAC as the next message's first block
                stream += bytes(16)
            stream += _cmac_last_block(message, k1, k2)
            ends.append(len(stream))
            self._use("mac")
        out = bytes(key.encrypt(bytes(stream), mechanism=pkcs11.Mechanism.AES_CBC, mechanism_param=bytes(16)))
        return [out[end - 16 : end] for end in ends]

    @_serialised
    def ecb(self, key: Any, block: bytes) -> bytes:
        self._use("encrypt")
        return bytes(key.encrypt(block, mechanism=_pkcs11().Mechanism.AES_ECB))

    @_serialised
    def cbc(self, key: Any, data: bytes, iv: bytes, decrypt: bool = False) -> bytes:
        self._use("decrypt" if decrypt else "encrypt")
        mechanism = _pkcs11().Mechanism.AES_CBC
        if decrypt:
            return bytes(key.decrypt(data, mechanism=mechanism, mechanism_param=iv))
        return bytes(key.encrypt(data, mechanism=mechanism, mechanism_param=iv))


class TokenDes(_TokenKeyUses, DesOperations):
    """SCP02's operations ([GPCS] Appendix E) on token keys (see the module's doc for the retail MAC)."""

    @_serialised
    def key_length(self, key: Any) -> int:
        key_type = _pkcs11().KeyType
        if key.key_type not in (key_type.DES2, key_type.DES3):
            raise SecureChannelError(f"the token key {self.label!r} is {key.key_type.name}: SCP02 needs two-key "
                                     "3DES keys")
        return 16 if key.key_type == key_type.DES2 else 24

    def derive(self, key: Any, constant: bytes, sequence_counter: bytes, *, mac: bool = False) -> DesSessionKey:
        return self.kms.des_derive(key, self.label, constant + sequence_counter + bytes(12), with_k1=mac,
                                   wrapping=constant == SCP02_DEK)

    @_serialised
    def full_mac(self, key: DesSessionKey, data: bytes) -> bytes:
        self._use("cryptogram")
        return bytes(key.key.encrypt(pad_m2(data), mechanism=_pkcs11().Mechanism.DES3_CBC,
                                     mechanism_param=bytes(8)))[-8:]

    @_serialised
    def retail_mac(self, key: DesSessionKey, data: bytes, icv: bytes) -> bytes:
        self._use("mac")
        mechanism = _pkcs11().Mechanism
        padded = pad_m2(data)
        chain = icv
        if len(padded) > 8:  # single DES (3DES under K1 K1) over every block but the last
            chain = bytes(key.k1.encrypt(padded[:-8], mechanism=mechanism.DES3_CBC, mechanism_param=icv))[-8:]
        return bytes(key.key.encrypt(_xor(chain, padded[-8:]), mechanism=mechanism.DES3_ECB))

    @_serialised
    def encrypt_icv(self, key: DesSessionKey, icv: bytes) -> bytes:
        self._use("encrypt")
        return bytes(key.k1.encrypt(icv, mechanism=_pkcs11().Mechanism.DES3_ECB))

    @_serialised
    def cbc(self, key: DesSessionKey, data: bytes) -> bytes:
        self._use("encrypt")
        return bytes(key.key.encrypt(data, mechanism=_pkcs11().Mechanism.DES3_CBC, mechanism_param=bytes(8)))

    @_serialised
    def ecb(self, key: DesSessionKey, data: bytes) -> bytes:
        self._use("encrypt")
        return bytes(key.key.encrypt(data, mechanism=_pkcs11().Mechanism.DES3_ECB))


@dataclass(frozen=True)
class TokenCardKeys:
    """One card's static keys as token objects: opens a secure channel computing in the token."""

    kms: Kms = field(repr=False)
    label: str
    enc: Any = field(repr=False)
    mac: Any = field(repr=False)
    dek: Any = field(repr=False)
    kvn: int = 0

    def for_card(self, key_diversification_data: bytes) -> TokenCardKeys:
        return self

    def channel(self, host_challenge: bytes, response: GPInitializeUpdateResponse,
                scp02_i: int = 0x55) -> SecureChannel:
        if response.scp == 0x02:
            return SCP02(self, host_challenge, response, i=scp02_i,  # type: ignore[arg-type]
                         ops=TokenDes(self.kms, self.label))
        return SCP03(self, host_challenge, response, ops=TokenAes(self.kms, self.label))  # type: ignore[arg-type]

    @property
    def fingerprint_material(self) -> bytes:
        return f"token:{self.kms.token_label}:{self.label}".encode() + bytes((self.kvn,))

    def __repr__(self) -> str:
        return f"TokenCardKeys({self.label}, kvn=0x{self.kvn:02X})"


@dataclass(frozen=True)
class TokenKeySet:
    """A key set of the KMS as the GP client takes one (kvn, for_card, fingerprint_material): a master key
    ``label`` diversified per card (``kdf``), or a static key ``label`` the same on every card (kdf None)."""

    kms: Kms = field(repr=False)
    label: str
    kdf: str | None
    kvn: int = 0

    def for_card(self, key_diversification_data: bytes) -> TokenCardKeys:
        if self.kdf is None:
            key = self.kms.key(self.label)
            self.kms._audit("use", self.label, "static card keys")
            return TokenCardKeys(self.kms, self.label, key, key, key, self.kvn)
        keys = self.kms.derive_card_keys(self.label, self.kdf, key_diversification_data)
        return TokenCardKeys(self.kms, self.label, keys["enc"], keys["mac"], keys["dek"], self.kvn)

    @property
    def scp(self) -> int:
        """The secure channel protocol these keys run: 2 for 3DES keys (emv, visa2 or a static 3DES key), 3 for
        AES (kdf3 or a static AES key)."""
        if self.kdf is not None:
            return 3 if self.kdf == "kdf3" else 2
        return 3 if self.kms.key_type(self.label) == "aes" else 2

    @property
    def fingerprint_material(self) -> bytes:
        return f"token:{self.kms.token_label}:{self.label}:{self.kdf}".encode() + bytes((self.kvn,))

    def __repr__(self) -> str:
        return f"TokenKeySet({self.label}, kdf={self.kdf}, kvn=0x{self.kvn:02X})"


@contextmanager
def opened(kms: Kms) -> Iterator[Kms]:
    with kms:
        yield kms
