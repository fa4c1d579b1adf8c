"""A GlobalPlatform card manager client (host side), for real cards and the simulated card manager.

Commands and data objects of GlobalPlatform Card Specification 2.3.1 ([GPCS]): SELECT of the Issuer Security
Domain, the secure channel (cardsuite.gp.scp), GET STATUS (11.4), GET DATA (11.3; CPLC, card data, key
information), INSTALL (11.5), LOAD (11.6), DELETE (11.2) and SET STATUS (11.10). Results are dataclasses;
failures are GPError (a StatusError) with the status word and what it means for that command.

The library logs and never prints; the CLI (cardsuite.cli.gp) prints.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NoReturn

from cryptography.hazmat.primitives.asymmetric import rsa

from cardsuite.apdu import SW_OK, CommandAPDU, ResponseAPDU, StatusError, select_by_name, sw_meaning
from cardsuite.errors import CardsuiteError
from cardsuite.gp.dap import DAP_KEY_ID, DAP_KEY_VERSION, DapSigner, block_hash, dap_block, put_key_data
from cardsuite.gp.guard import BrickGuard
from cardsuite.gp.perso import (
    StoredKeys,
    check_stored,
    parse_put_key_response,
    put_key_command,
    store_data_blocks,
    store_data_p1,
)
from cardsuite.gp.scp import (
    INS_EXTERNAL_AUTHENTICATE,
    INS_INITIALIZE_UPDATE,
    CardCryptogramError,
    GPInitializeUpdateResponse,
    KeySet,
    SecureChannel,
    SecurityLevel,
    initialize_update,
    open_channel,
)
from cardsuite.tlv import TlvError, encode_tlv, parse_tlv
from cardsuite.tooling.cap import Cap
from cardsuite.transport.base import Transport

log = logging.getLogger(__name__)

ISD_AID = bytes.fromhex("A000000151000000")  # GlobalPlatform's ISD AID
KNOWN_ISD_AIDS = (ISD_AID, bytes.fromhex("A000000003000000"), bytes.fromhex("A0000000030000"))
CLA_GP = 0x80
INS_DELETE, INS_GET_DATA, INS_GET_STATUS, INS_INSTALL, INS_LOAD, INS_SET_STATUS, INS_PUT_KEY, INS_STORE_DATA = (
    0xE4, 0xCA, 0xF2, 0xE6, 0xE8, 0xF0, 0xD8, 0xE2)
# [GPCS] Table 11-41: INSTALL P1
INSTALL_FOR_LOAD, INSTALL_FOR_INSTALL, INSTALL_FOR_MAKE_SELECTABLE = 0x02, 0x04, 0x08
INSTALL_FOR_PERSONALIZATION, INSTALL_FOR_REGISTRY_UPDATE = 0x20, 0x40
INSTALL_FOR_EXTRADITION = 0x10
DEFAULT_SELECTED = "CardReset"  # [GPCS] Table 11-7: privilege byte 1 b3, "Default Selected" before GP 2.2
SW_MORE_DATA = 0x6310

# [GPCS] 11.4.2.1, Table 11-33: GET STATUS P1
STATUS_ISD, STATUS_APPLICATIONS, STATUS_LOAD_FILES, STATUS_LOAD_FILES_AND_MODULES = 0x80, 0x40, 0x20, 0x10

# [GPCS] 11.1.1: life cycle coding
CARD_LIFE_CYCLE = {0x01: "OP_READY", 0x07: "INITIALIZED", 0x0F: "SECURED", 0x7F: "CARD_LOCKED", 0xFF: "TERMINATED"}
CARD_STATES = {name: code for code, name in CARD_LIFE_CYCLE.items()}

# [GPCS] 11.1.2, Table 11-7: privileges, three bytes (byte, mask) -> name; the multi-bit ones first
PRIVILEGES: tuple[tuple[str, int, int], ...] = (
    ("MandatedDAPVerification", 0, 0xC1), ("DAPVerification", 0, 0xC0), ("DelegatedManagement", 0, 0xA0),
    ("SecurityDomain", 0, 0x80), ("CardLock", 0, 0x10), ("CardTerminate", 0, 0x08), ("CardReset", 0, 0x04),
    ("CVMManagement", 0, 0x02), ("TrustedPath", 1, 0x80), ("AuthorizedManagement", 1, 0x40),
    ("TokenVerification", 1, 0x20), ("GlobalDelete", 1, 0x10), ("GlobalLock", 1, 0x08),
    ("GlobalRegistry", 1, 0x04), ("FinalApplication", 1, 0x02), ("GlobalService", 1, 0x01),
    ("ReceiptGeneration", 2, 0x80), ("CipheredLoadFileDataBlock", 2, 0x40), ("ContactlessActivation", 2, 0x20),
    ("ContactlessSelfActivation", 2, 0x10),
)
PRIVILEGE_NAMES = tuple(name for name, _, _ in PRIVILEGES)

# [GPCS] Table 11-16: key types in key information templates
KEY_TYPES = {0x80: "DES", 0x82: "3DES-CBC", 0x83: "DES-ECB", 0x84: "DES-CBC", 0x85: "TLS-PSK", 0x88: "AES",
             0x90: "HMAC-SHA1", 0x91: "HMAC-SHA1-160", 0xA0: "RSA public e", 0xA1: "RSA public N",
             0xA2: "RSA private N", 0xA3: "RSA private d", 0xB0: "ECC public", 0xB1: "ECC private"}

# What a status word means for a card manager, beyond ISO 7816-4 ([GPCS] 11.x "Response Message").
GP_MEANINGS = {
    0x6300: "authentication failed: the card counted a failed attempt",
    0x6438: "an imported package is missing or has another version (built for the wrong Java Card version, "
            "or a library package not loaded first)",
    0x6581: "memory failure",
    0x6982: "security status not satisfied (no secure channel, too low a security level, or at the last LOAD a DAP "
            "the security domain does not accept: missing, or signed with another key)",
    0x6983: "authentication blocked: the card refuses any further authentication with this key set",
    0x6985: "conditions of use not satisfied (refused in this state: the applet's install() failed, the AID is "
            "taken, the privileges are not allowed, or the object is in use)",
    0x6A80: "incorrect values in the command data (malformed load file or parameters)",
    0x6A81: "function not supported (the card or application is locked?)",
    0x6A82: "application or load file not found",
    0x6A84: "not enough memory on the card",
    0x6A86: "incorrect P1 P2",
    0x6A88: "referenced data not found (no such key set, data object or AID)",
}

# Traces never show PUT KEY or STORE DATA data, nor anything sent under secure messaging, nor the
# INITIALIZE UPDATE challenges and cryptograms: mask_rules.txt, shared with the simulator bridge.


SW_CARD_LOCKED = 0x6283  # SELECT of the ISD on a CARD_LOCKED card ([GPCS] 11.9.2.3)

# INITIALIZE UPDATE refused for these keys: security status, authentication blocked, failed
_AUTHENTICATION_REFUSED = (0x6982, 0x6983, 0x6300)
# What the brick guard records of a refused INITIALIZE UPDATE: 6A88 (no such key version) too, since many
# cards count any INITIALIZE UPDATE not followed by a successful EXTERNAL AUTHENTICATE, and retrying the
# same key set cannot go better
_INITIALIZE_UPDATE_COUNTED = (*_AUTHENTICATION_REFUSED, 0x6A88)


class GPError(StatusError):
    """A card manager command failed; carries the status word and its GlobalPlatform meaning."""

    def __init__(self, sw: int, operation: str, command: CommandAPDU | None = None, data: bytes = b"",
                 expected: tuple[int, ...] = (SW_OK,)) -> None:
        super().__init__(sw, command=command, expected=expected, data=data)
        self.operation = operation

    @property
    def meaning(self) -> str:
        return GP_MEANINGS.get(self.sw) or sw_meaning(self.sw)

    def __str__(self) -> str:
        return f"{self.operation} failed: card answered {self.sw:04X} ({self.meaning})"


class AuthenticationError(GPError):
    """The card refused INITIALIZE UPDATE or EXTERNAL AUTHENTICATE for these keys."""


class AlreadyLoadedError(GPError):
    """INSTALL [for load] refused because the package is on the card already. Cards answer it with the
    generic 6985 (conditions of use not satisfied), which reads as "the AID is taken": the registry says
    which it is."""

    def __init__(self, refused: GPError, present: LoadFile) -> None:
        super().__init__(refused.sw, refused.operation, refused.command, refused.data, refused.expected)
        self.load_file = present

    def __str__(self) -> str:
        aid = self.load_file.aid.hex().upper()
        version = f" v{self.load_file.version_string}" if self.load_file.version_string else ""
        return (f"package {aid}{version} is already loaded on the card (INSTALL [for load] answered "
                f"{self.sw:04X}): delete it with its applications first (gp delete {aid} --related) to load it "
                "again, or install from the loaded one")


class CardManagerError(CardsuiteError):
    """The card manager's answer cannot be understood, or a request makes no sense."""


def counted_failure(exc: Exception) -> str | None:
    """What the brick guard records of a failed authentication, or None for a failure the card does not
    count (a SELECT refused, another secure channel protocol offered, the reader gone): a card cryptogram
    that does not verify, a refused INITIALIZE UPDATE (_INITIALIZE_UPDATE_COUNTED), a refused EXTERNAL
    AUTHENTICATE (any status word)."""
    if isinstance(exc, CardCryptogramError):
        return str(exc)
    if isinstance(exc, GPError) and exc.command is not None:
        if exc.command.ins == INS_INITIALIZE_UPDATE and exc.sw in _INITIALIZE_UPDATE_COUNTED:
            return "INITIALIZE UPDATE refused"
        if exc.command.ins == INS_EXTERNAL_AUTHENTICATE:
            return "EXTERNAL AUTHENTICATE refused"
    return None


# ---------------------------------------------------------------- results


def privilege_names(privileges: bytes) -> list[str]:
    raw = privileges.ljust(3, b"\x00")
    names, taken = [], [0, 0, 0]
    for name, index, mask in PRIVILEGES:
        if raw[index] & mask == mask and (raw[index] & ~taken[index]) & mask:
            names.append(name)
            taken[index] |= mask
    return names


def encode_privileges(names: Iterable[str]) -> bytes:
    """Privilege names to the 1-byte (first byte only) or 3-byte coding of INSTALL."""
    table = {n.lower(): (i, m) for n, i, m in PRIVILEGES}
    raw = bytearray(3)
    for name in names:
        try:
            index, mask = table[name.strip().lower()]
        except KeyError:
            raise CardManagerError(f"unknown privilege {name!r}; valid: {', '.join(PRIVILEGE_NAMES)}") from None
        raw[index] |= mask
    return bytes(raw[:1]) if not raw[1] and not raw[2] else bytes(raw)


@dataclass(frozen=True)
class Application:
    """An entry of the GlobalPlatform registry for the ISD, a security domain or an application."""

    aid: bytes
    life_cycle: int
    privileges: bytes
    kind: str  # "ISD", "SSD" or "APP"
    load_file: bytes | None = None
    domain: bytes | None = None

    @property
    def state(self) -> str:
        if self.kind == "ISD":
            return CARD_LIFE_CYCLE.get(self.life_cycle, f"0x{self.life_cycle:02X}")
        if self.life_cycle & 0x80:
            return "LOCKED"
        named = {0x03: "INSTALLED", 0x07: "SELECTABLE", 0x0F: "PERSONALIZED"}
        if self.life_cycle in named:
            return named[self.life_cycle]
        if self.life_cycle & 0x07 == 0x07:  # bits 4-7 are the application's own states
            return f"SELECTABLE (application state 0x{self.life_cycle:02X})"
        return f"0x{self.life_cycle:02X}"

    @property
    def privilege_names(self) -> list[str]:
        return privilege_names(self.privileges)


@dataclass(frozen=True)
class LoadFile:
    """An Executable Load File (a package) with its Executable Modules (applet classes)."""

    aid: bytes
    life_cycle: int = 0x01
    version: bytes | None = None
    modules: tuple[bytes, ...] = ()
    domain: bytes | None = None

    @property
    def state(self) -> str:
        return "LOADED" if self.life_cycle == 0x01 else f"0x{self.life_cycle:02X}"

    @property
    def version_string(self) -> str | None:
        return ".".join(str(b) for b in self.version) if self.version else None


@dataclass(frozen=True)
class CardContents:
    isd: Application | None
    applications: list[Application] = field(default_factory=list)
    load_files: list[LoadFile] = field(default_factory=list)

    def application(self, aid: bytes) -> Application | None:
        return next((a for a in self.applications if a.aid == aid), None)

    def load_file(self, aid: bytes) -> LoadFile | None:
        return next((f for f in self.load_files if f.aid == aid), None)


def _bcd_date(raw: bytes) -> str:
    """CPLC dates are YDDD: the last digit of the year, then the day of the year."""
    digits = raw.hex().upper()
    return f"Y{digits[0]} day {digits[1:]}" if digits.isdigit() else digits


@dataclass(frozen=True)
class Cplc:
    """Card Production Life Cycle data (GET DATA 9F7F; [GPCS] H.6, 42 bytes)."""

    raw: bytes
    FIELDS = (("ic_fabricator", 2), ("ic_type", 2), ("os_id", 2), ("os_release_date", 2), ("os_release_level", 2),
              ("ic_fabrication_date", 2), ("ic_serial_number", 4), ("ic_batch_identifier", 2),
              ("ic_module_fabricator", 2), ("ic_module_packaging_date", 2), ("icc_manufacturer", 2),
              ("ic_embedding_date", 2), ("ic_pre_personalizer", 2), ("ic_pre_perso_equipment_date", 2),
              ("ic_pre_perso_equipment_id", 4), ("ic_personalizer", 2), ("ic_personalization_date", 2),
              ("ic_perso_equipment_id", 4))

    @classmethod
    def parse(cls, data: bytes) -> Cplc:
        if data[:2] == b"\x9f\x7f":
            try:
                data = dict(parse_tlv(data)).get(0x9F7F, b"")
            except TlvError as exc:
                raise CardManagerError(f"malformed CPLC: {exc}") from None
        if len(data) != 42:
            raise CardManagerError(f"CPLC data has {len(data)} bytes, expected 42")
        return cls(data)

    def fields(self) -> dict[str, bytes]:
        out, pos = {}, 0
        for name, size in self.FIELDS:
            out[name] = self.raw[pos : pos + size]
            pos += size
        return out

    def describe(self) -> list[tuple[str, str]]:
        rows = []
        for name, value in self.fields().items():
            text = value.hex().upper()
            if name.endswith("_date"):
                text += f" ({_bcd_date(value)})"
            rows.append((name, text))
        return rows

    @property
    def identity(self) -> str:
        """Fabricator, IC type, serial number and batch: what tells one chip from another."""
        f = self.fields()
        return "cplc:" + "".join(f[k].hex().upper() for k in ("ic_fabricator", "ic_type", "ic_serial_number",
                                                                  "ic_batch_identifier"))


@dataclass(frozen=True)
class KeyInfo:
    """One key of the key information template (GET DATA E0; [GPCS] 11.3.3.1)."""

    key_id: int
    version: int
    components: tuple[tuple[int, int], ...]  # (key type, length in bytes)

    @property
    def type_name(self) -> str:
        return "+".join(KEY_TYPES.get(t, f"0x{t:02X}") for t, _ in self.components)

    @property
    def length(self) -> int:
        return self.components[0][1] if self.components else 0


def parse_key_info(data: bytes) -> list[KeyInfo]:
    try:
        outer = dict(parse_tlv(data))
        items = parse_tlv(outer.get(0xE0, data if data[:1] == b"\xc0" else b""))
    except TlvError as exc:
        raise CardManagerError(f"malformed key information template: {exc}") from None
    keys = []
    for tag, value in items:
        if tag != 0xC0 or len(value) < 2:
            continue
        rest = value[2:]
        pairs = tuple((rest[i], rest[i + 1]) for i in range(0, len(rest) - 1, 2) if rest[i] != 0xFF)
        keys.append(KeyInfo(value[0], value[1], pairs))
    return keys


def parse_card_data(data: bytes) -> dict[str, str]:
    """Card recognition data (GET DATA 66, [GPCS] H.2): the OIDs under 73 by tag, with the SCP and its
    i parameter from tag 64 as 'scp' (e.g. '02 55')."""
    try:
        outer = dict(parse_tlv(data))
        inner = dict(parse_tlv(outer.get(0x66, data)))
        fields = parse_tlv(inner.get(0x73, b""))
    except TlvError as exc:
        raise CardManagerError(f"malformed card data: {exc}") from None
    out: dict[str, str] = {}
    for tag, value in fields:
        oid = dict(parse_tlv(value)).get(0x06, value) if tag != 0x06 else value
        out[f"{tag:02X}"] = oid.hex().upper()
        if tag == 0x64 and oid[:7] == bytes.fromhex("2A864886FC6B04") and len(oid) >= 9:
            out["scp"] = f"{oid[7]:02X} {oid[8]:02X}"
    return out


# ---------------------------------------------------------------- GET STATUS parsing


def _parse_status_tlv(data: bytes, p1: int) -> list[Application | LoadFile]:
    """The E3 format ([GPCS] Table 11-36)."""
    entries: list[Application | LoadFile] = []
    try:
        for tag, value in parse_tlv(data):
            if tag != 0xE3:
                continue
            items = parse_tlv(value)
            get = dict(items)
            aid, life = get.get(0x4F, b""), get.get(0x9F70, b"\x00")[0]
            domain = get.get(0xCC)
            if p1 in (STATUS_LOAD_FILES, STATUS_LOAD_FILES_AND_MODULES):
                modules = tuple(v for t, v in items if t == 0x84)
                entries.append(LoadFile(aid, life, get.get(0xCE), modules, domain))
            else:
                privileges = get.get(0xC5, b"\x00")
                kind = "ISD" if p1 == STATUS_ISD else ("SSD" if privileges[0] & 0x80 else "APP")
                entries.append(Application(aid, life, privileges, kind, get.get(0xC4), domain))
    except (TlvError, IndexError) as exc:
        raise CardManagerError(f"malformed GET STATUS response: {exc}") from None
    return entries


def _parse_status_legacy(data: bytes, p1: int) -> list[Application | LoadFile]:
    """The old format (P2 bit 2 clear): length, AID, life cycle, privileges; load files with modules add a
    module count and each module's length and AID ([GPCS] Tables 11-37, 11-38)."""
    entries: list[Application | LoadFile] = []
    pos = 0
    try:
        while pos < len(data):
            length = data[pos]
            aid = data[pos + 1 : pos + 1 + length]
            life, privileges = data[pos + 1 + length], data[pos + 2 + length]
            pos += 3 + length
            if p1 in (STATUS_LOAD_FILES, STATUS_LOAD_FILES_AND_MODULES):
                modules = []
                if p1 == STATUS_LOAD_FILES_AND_MODULES:
                    count = data[pos]
                    pos += 1
                    for _ in range(count):
                        modules.append(data[pos + 1 : pos + 1 + data[pos]])
                        pos += 1 + data[pos]
                entries.append(LoadFile(aid, life, None, tuple(modules)))
            else:
                kind = "ISD" if p1 == STATUS_ISD else ("SSD" if privileges & 0x80 else "APP")
                entries.append(Application(aid, life, bytes((privileges,)), kind))
    except IndexError:
        raise CardManagerError("malformed GET STATUS response (old format): it ends inside an entry") from None
    return entries


# ---------------------------------------------------------------- the client


ProgressCallback = Callable[[int, int], None]


# GET STATUS P2 ([GPCS] 11.4.2.2): b2 entries as TLV, b1 the next occurrence (after 6310, more data)
STATUS_TLV = 0x02
STATUS_NEXT = 0x01


def _get_data(tag: int) -> CommandAPDU:
    """GET DATA ([GPCS] 11.3) of a one- or two-byte tag."""
    return CommandAPDU(CLA_GP, INS_GET_DATA, tag >> 8, tag & 0xFF, le=256)


def _get_status(p1: int, p2: int) -> CommandAPDU:
    """GET STATUS ([GPCS] 11.4) of the entries ``p1`` selects, every AID (search criteria 4F 00)."""
    return CommandAPDU(CLA_GP, INS_GET_STATUS, p1, p2, b"\x4f\x00", le=256)


@dataclass
class Part:
    """Commands of one piece of work (a load file's INSTALL [for load] and LOAD blocks, an INSTALL [for
    install]) sent in a run with others (GlobalPlatform.send_parts), each with its name for an error."""

    commands: list[CommandAPDU]
    names: list[str]
    load_file: bytes | None = None  # a load's AID: a refused INSTALL [for load] is checked against the registry


class PartRefused(CardsuiteError):
    """A command of send_parts() was refused: ``done`` parts before it were done whole, ``error`` says why."""

    def __init__(self, done: int, error: GPError) -> None:
        super().__init__(str(error))
        self.done = done
        self.error = error


class GlobalPlatform:
    """Talks to a card manager over any Transport. One secure channel at a time; selecting something else
    closes it (the card forgets it too)."""

    def __init__(self, transport: Transport, isd: bytes | None = ISD_AID, guard: BrickGuard | None = None) -> None:
        self.transport = transport
        self.isd = isd
        self.guard = guard
        self.channel: SecureChannel | None = None
        self.selected: bytes | None = None
        self._card_data: dict[str, str] | None = None
        # commands that go in EXTERNAL AUTHENTICATE's run if the call in _after_authentication authenticates,
        # and their answers once sent
        self._ahead: list[CommandAPDU] = []
        self._ahead_answers: list[ResponseAPDU] | None = None

    # -- plumbing
    def send(self, command: CommandAPDU, operation: str, expected: Iterable[int] = (SW_OK,)) -> ResponseAPDU:
        """Wraps the command for the open secure channel (if any), sends it, unwraps and checks the answer."""
        wire = self.channel.wrap(command) if self.channel is not None else command
        response = self.transport.transmit(wire)
        if self.channel is not None:
            response = self.channel.unwrap(response)
        expected = tuple(expected)
        if response.sw not in expected:
            raise GPError(response.sw, operation, command, response.data, expected)
        return response

    def send_many(self, commands: Sequence[CommandAPDU], operations: Sequence[str]) -> list[ResponseAPDU]:
        """send() of each command in order, expecting 9000, handed to the transport together (send_run()). The
        first answer that is not 9000 raises its GPError as send() would."""
        responses = self.send_run(commands)
        for command, operation, response in zip(commands, operations, responses, strict=False):
            if response.sw != SW_OK:
                raise GPError(response.sw, operation, command, response.data, (SW_OK,))
        return responses

    def send_run(self, commands: Sequence[CommandAPDU]) -> list[ResponseAPDU]:
        """The commands wrapped for the open secure channel and handed to the transport together
        (Transport.transmit_many: it may send them without waiting for each answer, and stops at the first
        answer that is not 9000); the answers unwrapped, up to that one. The channel is left as if the commands
        had gone one by one: the ones never sent were never wrapped. With R-MAC, one by one: each answer's MAC
        is checked before the next command goes."""
        channel = self.channel
        if channel is not None and channel.level & SecurityLevel.R_MAC:
            answers: list[ResponseAPDU] = []
            for command in commands:
                answers.append(channel.unwrap(self.transport.transmit(channel.wrap(command))))
                if answers[-1].sw != SW_OK:
                    break
            return answers
        return self._wrapped_run(channel, commands)[1]

    def _wrapped_run(self, channel: SecureChannel | None, commands: Sequence[CommandAPDU],
                     head: CommandAPDU | None = None) -> tuple[ResponseAPDU | None, list[ResponseAPDU]]:
        """send_run() without R-MAC, after ``head`` (sent as it is, in the same run): head's answer and the
        commands' answers, unwrapped. The channel is left as after the last command answered."""
        wires: list[CommandAPDU] = list(commands)
        states: list[SecureChannel | None] = [None] * (len(commands) + 1)
        if channel is not None:  # the channel before the run, then after each command (C-MAC chaining, counter)
            before = copy.copy(channel)
            wrapped = channel.wrap_run(commands)
            wires, states = [wire for wire, _ in wrapped], [before, *(after for _, after in wrapped)]
        responses = self.transport.transmit_many([head, *wires] if head is not None else wires)
        head_answer = responses.pop(0) if head is not None and responses else None
        if channel is not None and len(responses) < len(commands):
            vars(channel).update(vars(states[len(responses)]))
        return head_answer, [state.unwrap(answer) if state is not None else answer
                             for state, answer in zip(states[1:], responses, strict=False)]

    def _after_authentication(self, authenticate: Callable[[], object] | None,
                              commands: Sequence[CommandAPDU]) -> list[ResponseAPDU]:
        """send_run() of ``commands`` after ``authenticate()`` (a call that opens the secure channel if none
        is open): when it opens one, the commands go in EXTERNAL AUTHENTICATE's run (a relay: one round trip
        less), wrapped as the session's first commands; their answers are its. EXTERNAL AUTHENTICATE's own
        answer is judged first, as when sent alone: refused, it raises (the brick guard counts it) and the
        commands after it never reach the card (a run stops at the first answer that is not 9000)."""
        if authenticate is None:
            return self.send_run(commands)
        self._ahead, self._ahead_answers = list(commands), None
        try:
            authenticate()
            answers = self._ahead_answers
        finally:
            self._ahead, self._ahead_answers = [], None
        return answers if answers is not None else self.send_run(commands)

    def select(self, aid: bytes | None = None) -> bytes:
        """SELECT the ISD (or ``aid``); returns its FCI. Without an ISD AID, tries the well-known ones."""
        self.channel = None
        candidates = [aid] if aid is not None else ([self.isd] if self.isd is not None else list(KNOWN_ISD_AIDS))
        response = None
        for candidate in candidates:
            response = self.transport.transmit(select_by_name(candidate))
            if self._selected(candidate, response, aid):
                return response.data
        assert response is not None
        self._not_selected(candidates, response, aid)

    def select_and_get_data(self, tag: int) -> bytes:
        """SELECT of the ISD and GET DATA ``tag`` ([GPCS] 11.3, before authentication: CPLC, card data)
        handed to the transport as one run (a relay: one round trip, not two); the data object, or the
        GPError of get_data or of select. Without a known ISD AID, select() then get_data()."""
        self.selected = None
        if self.isd is None:
            self.select()
            return self.get_data(tag)
        self.channel = None
        get = _get_data(tag)
        [answer] = self._select_isd_and(get)
        if answer.sw != SW_OK:
            raise GPError(answer.sw, f"GET DATA {tag:04X}", get, answer.data, (SW_OK,))
        return answer.data

    def _select_isd_and(self, *commands: CommandAPDU) -> list[ResponseAPDU]:
        """SELECT of the (known) ISD and ``commands`` handed to the transport as one run (a relay: one round
        trip); the commands' answers, up to the first that is not 9000. A refused SELECT raises, and none of
        the commands was sent."""
        assert self.isd is not None
        answers = self.transport.transmit_many([select_by_name(self.isd), *commands])
        if not self._selected(self.isd, answers[0], None):
            self._not_selected([self.isd], answers[0], None)
        return answers[1:]

    def select_for_session(self) -> None:
        """SELECT of the ISD ahead of a secure channel, with the card data its handshake reads ([GPCS] H.2:
        the protocol and its options) in the same run when not read yet: one round trip for both. With the
        card data read, the SELECT goes in the handshake's run, ahead of INITIALIZE UPDATE (_handshake)."""
        if self.isd is None:
            self.select()
            return
        if self._card_data is not None:
            self.end_session()  # the ISD selected again, by the next command that needs it
            return
        try:
            self._card_data = parse_card_data(self.select_and_get_data(0x0066))
        except (GPError, CardManagerError):
            if self.selected is None:
                raise  # the SELECT; a card without card data is asked again by the handshake, as before

    def select_with_cplc(self) -> Cplc | None:
        """SELECT of the ISD with GET DATA of its CPLC, and of its card data for the secure channel to come
        (select_for_session), in one run; None when the card gives no CPLC before authentication, or one that
        does not parse. A refused SELECT raises. Without a known ISD AID, select() then GET DATA."""
        if self.isd is None:
            self.select()
            try:
                return Cplc.parse(self.get_data(0x9F7F))
            except (GPError, CardManagerError):
                return None
        self.selected = self.channel = None
        answers = self._select_isd_and(_get_data(0x9F7F), _get_data(0x0066))
        if len(answers) == 2:  # the CPLC given; card data too, or 6A88: then the handshake asks again
            try:
                self._card_data = parse_card_data(answers[1].data) if answers[1].sw == SW_OK else None
            except CardManagerError:
                self._card_data = None
        try:
            return Cplc.parse(answers[0].data) if answers[0].sw == SW_OK else None
        except CardManagerError:
            return None

    @property
    def known_card_data(self) -> dict[str, str] | None:
        """The card data read already (select_with_cplc, select_for_session), or None: nothing is sent."""
        return self._card_data

    @known_card_data.setter
    def known_card_data(self, data: dict[str, str] | None) -> None:
        """Card data read by another client of this card in the same flow (the ADS's identification given to
        the deploy, DeployOptions.identified): not read again."""
        self._card_data = data

    def _selected(self, candidate: bytes, response: ResponseAPDU, aid: bytes | None) -> bool:
        """Whether ``candidate`` answered its SELECT (then it is the selected one, and the ISD when no ``aid``
        was asked for); a locked card raises."""
        if response.sw == SW_OK:
            self.selected = candidate
            if aid is None:
                self.isd = candidate
            return True
        if response.sw == SW_CARD_LOCKED and aid is None:
            # [GPCS] 11.9.2.3 / 5.1.1.4: an ISD answers 6283 while the card is CARD_LOCKED
            raise GPError(response.sw, f"SELECT of the card manager {candidate.hex().upper()}: the card is "
                          "locked (CARD_LOCKED); only its issuer can unlock it")
        return False

    def _not_selected(self, candidates: list[bytes], response: ResponseAPDU, aid: bytes | None) -> NoReturn:
        tried = ", ".join(c.hex().upper() for c in candidates)
        what = f"SELECT {aid.hex().upper()}" if aid is not None else f"SELECT of the card manager ({tried}): " \
            "no card manager answers (a simulated card needs its card manager enabled)"
        raise GPError(response.sw, what)

    def end_session(self) -> None:
        """For a caller about to select another application on this card: that SELECT ends the secure
        channel on the card (a session belongs to the security domain selected when it opened, [GPCS]) and
        deselects the ISD, so the client forgets both; the next command needing the ISD selects it again."""
        self.channel = None
        self.selected = None

    def _require_isd(self) -> None:
        if self.selected is None or self.selected != self.isd:
            self.select()

    # -- identity (before authentication) and the brick guard
    def card_identity(self) -> str:
        """CPLC (chip identity) when the card gives it without authentication, else reader + ATR."""
        self._require_isd()
        response = self.transport.transmit(_get_data(0x9F7F))
        if response.sw == SW_OK:
            try:
                return Cplc.parse(response.data).identity
            except CardManagerError:
                log.info("CPLC unreadable; identifying the card by reader and ATR")
        return f"reader:{self.transport.name}|atr:{self.transport.atr.hex().upper()}"

    def open_secure_channel(self, keys: KeySet, level: SecurityLevel = SecurityLevel.C_MAC, *, scp: int | None = None,
                            force: bool = False, scp02_i: int | None = None,
                            host_challenge: bytes | None = None, s16: bool | None = None) -> SecureChannel:
        """INITIALIZE UPDATE, card cryptogram check, EXTERNAL AUTHENTICATE ([GPCS] E.5, [AmD] 7.1).

        Every INITIALIZE UPDATE counts towards the card manager's lock until EXTERNAL AUTHENTICATE succeeds,
        a key version the card lacks (6A88) included: probing key versions burns tries (docs/gp.md). With a
        brick guard, a card on which these keys failed before is refused before anything is sent unless
        ``force``; any failure the card counts is recorded, any success clears the record (_guarded)."""
        with self._guarded(keys, force):
            channel = self._authenticate(keys, level, scp, scp02_i, host_challenge=host_challenge, s16=s16)
        self.channel = channel
        return channel

    def open_with_any(self, candidates: Sequence[KeySet], level: SecurityLevel = SecurityLevel.C_MAC, *,
                      scp: int | None = None, force: bool = False, kvn: int | None = None) -> KeySet:
        """One authentication with whichever of the key sets the card holds (a key rotation that may or may
        not have happened): ONE INITIALIZE UPDATE (for key version ``kvn``, else the first candidate's), the
        card cryptogram checked on the host against every candidate of the version the card answered for,
        EXTERNAL AUTHENTICATE with the one that verifies. A wrong candidate costs nothing: the card counts
        INITIALIZE UPDATEs, not host-side checks. Returns the key set used.

        Brick guard: candidates already failed on this card are left out (unless ``force``); when the card
        counts a failure, every candidate tried is recorded (one try spent for all of them)."""
        identity = self.card_identity() if self.guard is not None else ""
        usable = [k for k in candidates if force or self.guard is None or self.guard.failure(identity, k) is None]
        if not usable:
            assert self.guard is not None
            self.guard.check(identity, candidates[0], force)  # raises, saying when and why
        try:
            channel, keys = self._handshake(usable, usable[0].kvn if kvn is None else kvn, level, scp, None)
        except Exception as exc:
            reason = counted_failure(exc)
            if self.guard is not None and reason is not None:
                for key_set in usable:
                    self.guard.record_failure(identity, key_set, reason, getattr(exc, "sw", None))
            raise
        if self.guard is not None:
            self.guard.record_success(identity, keys)
        self.channel = channel
        return keys

    @contextmanager
    def _guarded(self, keys: KeySet, force: bool) -> Iterator[None]:
        """The brick guard around one authentication (BrickGuard.attempt), when there is one. The card is
        identified first, before any INITIALIZE UPDATE."""
        if self.guard is None:
            yield
            return
        with self.guard.attempt(self.card_identity(), keys, force, counts=counted_failure):
            yield

    def _authenticate(self, keys: KeySet, level: SecurityLevel, scp: int | None, scp02_i: int | None, *,
                      host_challenge: bytes | None, s16: bool | None) -> SecureChannel:
        channel, _ = self._handshake([keys], keys.kvn, level, scp, scp02_i, host_challenge=host_challenge, s16=s16)
        return channel

    def _handshake(self, candidates: Sequence[KeySet], kvn: int, level: SecurityLevel, scp: int | None,
                   scp02_i: int | None, *, host_challenge: bytes | None = None,
                   s16: bool | None = None) -> tuple[SecureChannel, KeySet]:
        """One INITIALIZE UPDATE for ``kvn``, the card cryptogram checked against each candidate of the version
        the card answered for (on the host: no cost), EXTERNAL AUTHENTICATE with the one that verifies."""
        # anything sent between INITIALIZE UPDATE and EXTERNAL AUTHENTICATE aborts the session: ask first
        i = scp02_i if scp02_i is not None else self._scp02_i()
        if s16 is None:  # [AmD] 7.1.1: the host must send a 16-byte challenge to an S16 key set; card data tells
            s16 = self._scp03_s16()
        self._check_level(level)  # before INITIALIZE UPDATE: a level the card refuses costs a try
        if self.isd is None:
            self._require_isd()  # the well-known AIDs tried one by one
        self.channel = None
        # fixed only by tests replaying published sessions
        host_challenge = host_challenge or os.urandom(16 if s16 else 8)
        command = initialize_update(kvn, host_challenge)
        if self.selected == self.isd:
            response = self.transport.transmit(command)
        else:
            [response] = self._select_isd_and(command)
        if response.sw != SW_OK:
            kind = AuthenticationError if response.sw in _AUTHENTICATION_REFUSED else GPError
            raise kind(response.sw, f"INITIALIZE UPDATE (key version 0x{kvn:02X})", command, response.data)
        info = GPInitializeUpdateResponse.parse(response.data)
        if scp is not None and info.scp != scp:
            raise CardManagerError(f"the card answered with SCP{info.scp:02X} for key version 0x{info.kvn:02X}, "
                                   f"SCP{scp:02X} was asked for")
        if kvn and info.kvn != kvn:
            log.warning("asked for key version 0x%02X, the card answered for 0x%02X", kvn, info.kvn)
        tried = [k for k in candidates if k.kvn in (0, info.kvn)] if len(candidates) > 1 else list(candidates)
        channel = None
        for keys in tried:
            try:  # a master key: this card's own keys first
                channel = open_channel(keys.for_card(info.key_diversification_data), host_challenge, info, i)
                break
            except CardCryptogramError:
                if len(tried) == 1:
                    raise
        if channel is None:
            raise CardCryptogramError(f"the card cryptogram (key version 0x{info.kvn:02X}) verifies with none of "
                                      f"the {len(tried)} key sets of that version: none of them is the card's")
        auth = channel.external_authenticate(level)
        if self._ahead and not channel.level & SecurityLevel.R_MAC:  # R-MAC: each answer checked before the next
            channel.opened()  # the commands after it are wrapped as the session's; dropped if it is refused
            response, ahead = self._wrapped_run(channel, self._ahead, head=auth)
            assert response is not None  # transmit_many answers at least the first command
            self._ahead = []  # sent once
            if response.sw == SW_OK:
                self._ahead_answers = ahead
        else:
            response = self.transport.transmit(auth)
        if response.sw != SW_OK:
            raise AuthenticationError(response.sw, "EXTERNAL AUTHENTICATE", auth, response.data)
        channel.opened()
        log.info("secure channel SCP%02X open, key version 0x%02X, level %02X", channel.scp, info.kvn, int(level))
        return channel, keys

    def _card_scp(self) -> str:
        """The secure channel protocol and its i parameter from card data ("02 55", "03 70"), or ""."""
        try:
            return self.card_data().get("scp", "")
        except (GPError, CardManagerError):
            return ""

    def _scp02_i(self) -> int:
        """The SCP02 option from card data when the card tells it; 55 otherwise (15 and 55 are the same for
        the host: both encrypt the ICV)."""
        scp = self._card_scp()
        return int(scp.split()[1], 16) if scp.startswith("02 ") else 0x55

    def _check_level(self, level: SecurityLevel) -> None:
        """Refuses a response security level the card's card data says it lacks: SCP02 R-MAC is not implemented
        here, SCP03 needs i b6 (20) for R-MAC and b7 (40) for R-ENCRYPTION ([AmD] Table 4-1). Nothing is sent;
        without card data the card decides (EXTERNAL AUTHENTICATE 6A86)."""
        scp = self._card_scp()
        if not scp or not level & (SecurityLevel.R_MAC | SecurityLevel.R_ENCRYPTION):
            return
        protocol, i = scp.split()[0], int(scp.split()[1], 16)
        if protocol == "02":
            raise CardManagerError("this client does not implement SCP02 R-MAC: use level mac or enc on an SCP02 "
                                   "card (nothing was sent)")
        if level & SecurityLevel.R_MAC and not i & 0x20 or level & SecurityLevel.R_ENCRYPTION and not i & 0x40:
            raise CardManagerError(f"the card's SCP03 i={i:02X} offers no {'R-ENCRYPTION' if i & 0x20 else 'R-MAC'}"
                                   f" (i b6 R-MAC, b7 R-ENCRYPTION): choose a lower level (nothing was sent)")

    def _scp03_s16(self) -> bool:
        """Whether card data announces SCP03 in S16 mode (i bit 1)."""
        scp = self._card_scp()
        return scp.startswith("03 ") and bool(int(scp.split()[1], 16) & 0x01)

    # -- GET DATA
    def get_data(self, tag: int) -> bytes:
        """GET DATA ([GPCS] 11.3) of a one- or two-byte tag; the data object as the card returns it."""
        return self.send(_get_data(tag), f"GET DATA {tag:04X}").data

    def cplc(self) -> Cplc:
        return Cplc.parse(self.get_data(0x9F7F))

    def card_data(self) -> dict[str, str]:
        if self._card_data is None:
            selected = self.selected is not None and self.selected == self.isd
            data = self.get_data(0x0066) if selected else self.select_and_get_data(0x0066)
            self._card_data = parse_card_data(data)
        return self._card_data

    def key_info(self) -> list[KeyInfo]:
        return parse_key_info(self.get_data(0x00E0))

    # -- GET STATUS
    def get_status(self, p1: int, tlv: bool = True, first: ResponseAPDU | None = None) -> list[Application | LoadFile]:
        """Every registry entry of one kind, following 6310 (more data) with P2 'next occurrence'.
        Falls back to the old format when the card refuses the TLV one. ``first``: the answer to the first
        GET STATUS (TLV format), sent already (registry's run)."""
        p2 = STATUS_TLV if tlv else 0x00
        operation, expected = f"GET STATUS {p1:02X}", (SW_OK, SW_MORE_DATA, 0x6A88, 0x6A86)
        data = b""
        while True:
            command = _get_status(p1, p2)
            if first is None:
                response = self.send(command, operation, expected)
            else:
                response, first = first, None
                if response.sw not in expected:
                    raise GPError(response.sw, operation, command, response.data, expected)
            if response.sw == 0x6A86 and tlv:
                return self.get_status(p1, tlv=False)
            if response.sw == 0x6A86:
                raise GPError(response.sw, operation, command)
            if response.sw == 0x6A88:  # nothing of this kind on the card
                break
            data += response.data
            if response.sw != SW_MORE_DATA:
                break
            p2 |= STATUS_NEXT
        return _parse_status_tlv(data, p1) if tlv else _parse_status_legacy(data, p1)

    def registry(self, authenticate: Callable[[], object] | None = None, *,
                 firsts: Sequence[ResponseAPDU] | None = None) -> CardContents:
        """The ISD, the applications and the load files. The first GET STATUS of each kind go in one run (a
        relay: one round trip); an answer that is not 9000 (more data, none, another format) ends the run, and
        that kind and the ones after it go on one by one. The applications are asked last: a card with none
        answers 6A88 ([GPCS] 11.4.3), which ends a run, and every new card has none (one round trip less).
        ``authenticate``: called first, to open the secure channel if none is open; the run goes with its
        EXTERNAL AUTHENTICATE (_after_authentication). ``firsts``: the answers to registry_commands(), sent
        already in another run (send_parts' ``then``), as many as the card gave."""
        if firsts is None:
            firsts = self._after_authentication(authenticate, self.registry_commands())
        isd = [e for e in self.get_status(STATUS_ISD, first=firsts[0] if firsts else None)
               if isinstance(e, Application)]
        try:
            files = self.get_status(STATUS_LOAD_FILES_AND_MODULES, first=firsts[1] if len(firsts) > 1 else None)
        except GPError as exc:  # cards before GP 2.1.1 know only P1=20
            if exc.sw not in (0x6A80, 0x6A86):
                raise
            files = self.get_status(STATUS_LOAD_FILES)
        apps = [e for e in self.get_status(STATUS_APPLICATIONS, first=firsts[2] if len(firsts) > 2 else None)
                if isinstance(e, Application)]
        return CardContents(isd[0] if isd else None, apps, [f for f in files if isinstance(f, LoadFile)])

    @staticmethod
    def registry_commands() -> list[CommandAPDU]:
        """registry()'s first run: the first GET STATUS of each kind, the applications last."""
        return [_get_status(kind, STATUS_TLV)
                for kind in (STATUS_ISD, STATUS_LOAD_FILES_AND_MODULES, STATUS_APPLICATIONS)]

    # -- loading and installing
    def install_for_load(self, load_file_aid: bytes, domain: bytes | None = None, block_hash: bytes = b"",
                         params: bytes = b"", token: bytes = b"") -> None:
        """INSTALL [for load] ([GPCS] 11.5.2.3.1): the load file AID, the security domain that will own it."""
        command = self._install_for_load_command(load_file_aid, domain, block_hash, params, token)
        with self._refused_if_loaded(load_file_aid, command):
            self.send(command, "INSTALL [for load]")

    def _install_for_load_command(self, load_file_aid: bytes, domain: bytes | None, block_hash: bytes = b"",
                                  params: bytes = b"", token: bytes = b"") -> CommandAPDU:
        domain = self.isd if domain is None else domain
        data = b"".join(bytes((len(x),)) + x for x in (load_file_aid, domain or b"", block_hash, params, token))
        return CommandAPDU(CLA_GP, INS_INSTALL, INSTALL_FOR_LOAD, 0x00, data, le=256)

    @contextmanager
    def _refused_if_loaded(self, load_file_aid: bytes, install: CommandAPDU) -> Iterator[None]:
        """A refused INSTALL [for load] ``install`` raised as AlreadyLoadedError when the package is there."""
        try:
            yield
        except GPError as refused:
            if refused.command is not install:
                raise
            present = self._loaded(load_file_aid)
            if present is not None:
                raise AlreadyLoadedError(refused, present) from None
            raise

    def _loaded(self, load_file_aid: bytes) -> LoadFile | None:
        """The load file if the registry lists it, asked only after a refusal (no cost on a normal load);
        None when the registry cannot be read either (the original error is then the better one)."""
        try:
            return self.registry().load_file(load_file_aid)
        except (GPError, CardManagerError):
            return None

    def load(self, load_file: bytes, progress: ProgressCallback | None = None, block_size: int | None = None, *,
             install: CommandAPDU | None = None) -> int:
        """LOAD ([GPCS] 11.6) of a whole load file (``C4 L data``) in numbered blocks, the last with P1=80.
        Blocks are as large as the security level allows (255 less the MAC and padding). Returns the count.
        ``install``: the INSTALL [for load] that opens the load, sent ahead of the first window's blocks
        (its answer is 9000 or the end, as theirs: a relay sends them without a round trip)."""
        commands = self._load_blocks(load_file, block_size)
        # a LOAD block's answer is 9000 or the end of the load ([GPCS] 11.6.3): the blocks go in windows
        # (send_many, Transport.load_window), which a relay sends without a round trip per block
        step = self.transport.load_window
        for start in range(0, len(commands), step):
            window = commands[start : start + step]
            names = [f"LOAD block {start + i + 1}/{len(commands)}" for i in range(len(window))]
            ahead = [install] if start == 0 and install is not None else []
            self.send_many(ahead + window, ["INSTALL [for load]"] * len(ahead) + names)
            if progress is not None:
                for number in range(start, start + len(window)):
                    progress(number + 1, len(commands))
        return len(commands)

    def _load_blocks(self, load_file: bytes, block_size: int | None) -> list[CommandAPDU]:
        room = self.channel.max_data() if self.channel is not None else 255
        size = min(block_size or room, room)
        if size < 1:
            raise CardManagerError(f"block size {block_size} leaves no room for data")
        blocks = [load_file[i : i + size] for i in range(0, len(load_file), size)]
        if len(blocks) > 256:
            raise CardManagerError(f"the load file needs {len(blocks)} blocks of {size} bytes; "
                                   "LOAD numbers 256 at most")
        return [CommandAPDU(CLA_GP, INS_LOAD, 0x80 if number == len(blocks) - 1 else 0x00, number, block, le=256)
                for number, block in enumerate(blocks)]

    def load_cap(self, cap: Cap, progress: ProgressCallback | None = None, include_descriptor: bool = False,
                 block_size: int | None = None, domain: bytes | None = None, *, dap: DapSigner | None = None,
                 dap_domain: bytes | None = None) -> int:
        """INSTALL [for load] and LOAD of a CAP file into ``domain`` (default: the ISD). With ``dap``, for a
        domain that verifies DAPs (cardsuite.gp.dap): the Load File Data Block Hash in INSTALL [for load] and a
        DAP block signed for ``dap_domain`` (default: the domain loaded into) before the C4 block."""
        install, load_file = self._cap_load(cap, include_descriptor, domain, dap, dap_domain)
        with self._refused_if_loaded(cap.package_aid, install):
            return self.load(load_file, progress, block_size, install=install)

    def _cap_load(self, cap: Cap, include_descriptor: bool, domain: bytes | None, dap: DapSigner | None,
                  dap_domain: bytes | None) -> tuple[CommandAPDU, bytes]:
        """load_cap's INSTALL [for load] and load file."""
        if dap is None:
            return self._install_for_load_command(cap.package_aid, domain), cap.load_file(include_descriptor)
        digest = block_hash(cap.load_file_data_block(include_descriptor))
        install = self._install_for_load_command(cap.package_aid, domain, block_hash=digest)
        signer = dap_domain or domain or self.isd or ISD_AID
        return install, dap_block(signer, dap.sign(digest)) + cap.load_file(include_descriptor)

    def load_cap_part(self, cap: Cap) -> Part:
        """load_cap() of ``cap`` (into the ISD, no DAP) as a part of send_parts()."""
        install, load_file = self._cap_load(cap, False, None, None, None)
        blocks = self._load_blocks(load_file, None)
        return Part([install, *blocks], ["INSTALL [for load]"] + [f"LOAD block {n}/{len(blocks)}"
                                                                   for n in range(1, len(blocks) + 1)],
                    load_file=cap.package_aid)

    def install_for_install_part(self, load_file_aid: bytes, module_aid: bytes, instance_aid: bytes | None = None,
                                 *, privileges: bytes = b"\x00", params: bytes = b"") -> Part:
        """install_for_install() (made selectable) as a part of send_parts()."""
        command = self._install_for_install_command(load_file_aid, module_aid, instance_aid, privileges=privileges,
                                                    params=params)
        return Part([command], ["INSTALL [for install]"])

    def send_parts(self, parts: Sequence[Part], then: Sequence[CommandAPDU] = ()) -> list[ResponseAPDU]:
        """The parts' commands, each expecting 9000, in one run (send_run: a relay sends them in one round
        trip), then ``then`` in the same run, whatever they answer (the registry read back: more data or no
        entry end the run as they would alone); returns the answers to ``then``, as many as the card gave.
        The first part's answer that is not 9000 ends the run and is raised with the parts before it done:
        PartRefused (its ``done``, and ``error``: the GPError send() would have raised, AlreadyLoadedError for
        a load file the card holds already)."""
        commands = [command for part in parts for command in part.commands]
        answers = self.send_run([*commands, *then])
        index = 0
        for done, part in enumerate(parts):
            for command, name in zip(part.commands, part.names, strict=True):
                answer = answers[index]
                index += 1
                if answer.sw != SW_OK:
                    error = GPError(answer.sw, name, command, answer.data, (SW_OK,))
                    if part.load_file is not None and command is part.commands[0]:
                        present = self._loaded(part.load_file)
                        if present is not None:
                            error = AlreadyLoadedError(error, present)
                    raise PartRefused(done, error)
        return answers[index:]

    def install_for_install(self, load_file_aid: bytes, module_aid: bytes, instance_aid: bytes | None = None, *,
                            privileges: bytes = b"\x00", params: bytes = b"", token: bytes = b"",
                            make_selectable: bool = True) -> None:
        """INSTALL [for install (and make selectable)] ([GPCS] 11.5.2.3.2). ``params`` are the applet's own
        install parameters, sent as C9 inside the install parameters field."""
        self.send(self._install_for_install_command(load_file_aid, module_aid, instance_aid, privileges=privileges,
                                                    params=params, token=token, make_selectable=make_selectable),
                  "INSTALL [for install]")

    def _install_for_install_command(self, load_file_aid: bytes, module_aid: bytes, instance_aid: bytes | None, *,
                                     privileges: bytes, params: bytes, token: bytes = b"",
                                     make_selectable: bool = True) -> CommandAPDU:
        instance = instance_aid or module_aid
        install_params = encode_tlv(0xC9, params)
        fields = (load_file_aid, module_aid, instance, privileges, install_params, token)
        data = b"".join(bytes((len(x),)) + x for x in fields)
        p1 = INSTALL_FOR_INSTALL | (INSTALL_FOR_MAKE_SELECTABLE if make_selectable else 0)
        return CommandAPDU(CLA_GP, INS_INSTALL, p1, 0x00, data, le=256)

    def install_for_personalization(self, aid: bytes) -> None:
        """INSTALL [for personalization] ([GPCS] 11.5.2.3.5): the STORE DATA commands that follow, in this
        session, go to the application ``aid`` (through its security domain)."""
        data = b"\x00\x00" + bytes((len(aid),)) + aid + b"\x00\x00\x00"
        self.send(CommandAPDU(CLA_GP, INS_INSTALL, INSTALL_FOR_PERSONALIZATION, 0x00, data, le=256),
                  f"INSTALL [for personalization] of {aid.hex().upper()}")

    def install_for_registry_update(self, aid: bytes, privileges: bytes) -> None:
        """INSTALL [for registry update] ([GPCS] 11.5.2.3.4): new privileges for an installed application, as
        gp --make-default sends them (Default Selected / Card Reset)."""
        data = b"\x00\x00" + bytes((len(aid),)) + aid + bytes((len(privileges),)) + privileges + b"\x00\x00"
        self.send(CommandAPDU(CLA_GP, INS_INSTALL, INSTALL_FOR_REGISTRY_UPDATE, 0x00, data, le=256),
                  f"INSTALL [for registry update] of {aid.hex().upper()}")

    def install_for_extradition(self, aid: bytes, domain: bytes) -> None:
        """INSTALL [for extradition] ([GPCS] 11.5.2.3.5): associate the application or load file ``aid``
        with the security domain ``domain`` (gp --move AID --to DOMAIN)."""
        data = bytes((len(domain),)) + domain + b"\x00" + bytes((len(aid),)) + aid + b"\x00\x00\x00"
        self.send(CommandAPDU(CLA_GP, INS_INSTALL, INSTALL_FOR_EXTRADITION, 0x00, data, le=256),
                  f"INSTALL [for extradition] of {aid.hex().upper()} to {domain.hex().upper()}")

    # -- keys and personalisation data
    def put_key(self, new: KeySet, key_type: str | None = None, replace: int | None = None) -> StoredKeys:
        """PUT KEY ([GPCS] 11.8) of a whole key set (ENC, MAC, DEK) as version ``new.kvn``, added (``replace``
        None) or in place of version ``replace``. The key data goes encrypted under the DEK of the open
        channel; AES keys for an SCP03 domain, 3DES for SCP02 unless ``key_type`` says. The card's key check
        values are compared with the host's (PersoError on a mismatch). A master key set is first derived
        for this card (its key diversification data)."""
        channel = self._open_channel("PUT KEY")
        card_keys = new.for_card(channel.response.key_diversification_data)
        if key_type is None:
            key_type = "aes" if channel.scp == 0x03 else "3des"
        command = put_key_command(channel, card_keys, key_type, replace)
        what = f"PUT KEY (version 0x{new.kvn:02X}{f' in place of 0x{replace:02X}' if replace else ', new'})"
        response = self.send(CommandAPDU(CLA_GP, INS_PUT_KEY, command.p1, command.p2, command.data, le=256), what)
        stored = parse_put_key_response(response.data) if response.data else StoredKeys(new.kvn, ())
        check_stored(command, stored)
        return StoredKeys(stored.kvn, stored.kcvs or command.kcvs)

    def put_dap_key(self, public: rsa.RSAPublicKey, replace: bool = False) -> int:
        """PUT KEY ([GPCS] 11.8) of the selected security domain's DAP verification key (version 73, key 1, in
        clear), added or in place of the one there; the version the card answers."""
        self._open_channel("PUT KEY")
        command = CommandAPDU(CLA_GP, INS_PUT_KEY, DAP_KEY_VERSION if replace else 0x00, DAP_KEY_ID,
                              put_key_data(public), le=256)
        response = self.send(command, f"PUT KEY (DAP key, version 0x{DAP_KEY_VERSION:02X})")
        return response.data[0] if response.data else DAP_KEY_VERSION

    def store_data(self, data: bytes, fmt: str = "dgi", progress: ProgressCallback | None = None) -> int:
        """STORE DATA ([GPCS] 11.11) to the security domain, or to the application named by a preceding
        install_for_personalization: DGI or BER-TLV data objects, whole objects per command where they fit,
        numbered blocks, the last with P1 b8. Returns the number of commands."""
        channel = self._open_channel("STORE DATA")
        blocks = store_data_blocks(data, fmt, channel.max_data())
        for number, block in enumerate(blocks):
            last = number == len(blocks) - 1
            command = CommandAPDU(CLA_GP, INS_STORE_DATA, store_data_p1(fmt, last), number, block, le=256)
            self.send(command, f"STORE DATA block {number + 1}/{len(blocks)}")
            if progress is not None:
                progress(number + 1, len(blocks))
        return len(blocks)

    def _open_channel(self, operation: str) -> SecureChannel:
        if self.channel is None or not self.channel.authenticated:
            raise CardManagerError(f"{operation} needs an open secure channel (authenticate first)")
        return self.channel

    def delete(self, aid: bytes, related: bool = False) -> None:
        """DELETE ([GPCS] 11.2) of an application or load file; ``related`` also deletes a load file's
        applications (P2 = 80)."""
        command = CommandAPDU(CLA_GP, INS_DELETE, 0x00, 0x80 if related else 0x00, encode_tlv(0x4F, aid), le=256)
        self.send(command, f"DELETE {aid.hex().upper()}")

    # -- life cycles
    def set_application_lock(self, aid: bytes, locked: bool) -> None:
        """SET STATUS ([GPCS] 11.10) of an application: P1 40, P2 80 locks, 00 unlocks."""
        command = CommandAPDU(CLA_GP, INS_SET_STATUS, 0x40, 0x80 if locked else 0x00, aid)
        self.send(command, f"SET STATUS ({'lock' if locked else 'unlock'} {aid.hex().upper()})")

    def set_card_life_cycle(self, state: str) -> None:
        """SET STATUS of the card (P1 80): INITIALIZED, SECURED, CARD_LOCKED, TERMINATED, or back to SECURED
        to unlock."""
        self.send(self._card_life_cycle_command(state), f"SET STATUS (card to {state.upper()})")

    def card_life_cycle_part(self, states: Sequence[str]) -> Part:
        """SET STATUS of the card to each of ``states`` in turn, as a part of send_parts()."""
        return Part([self._card_life_cycle_command(state) for state in states],
                    [f"SET STATUS (card to {state.upper()})" for state in states])

    def _card_life_cycle_command(self, state: str) -> CommandAPDU:
        try:
            code = CARD_STATES[state.upper()]
        except KeyError:
            valid = ", ".join(CARD_STATES)
            raise CardManagerError(f"unknown card life cycle state {state!r}; valid: {valid}") from None
        return CommandAPDU(CLA_GP, INS_SET_STATUS, 0x80, code, self.isd or b"")
