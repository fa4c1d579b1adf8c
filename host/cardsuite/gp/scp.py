"""GlobalPlatform secure channels, host side: SCP02 (3DES) and SCP03 (AES), with `cryptography`.

References:
- [GPCS] GlobalPlatform Card Specification 2.3.1, Appendix E (SCP02) and section 10 (secure communication);
- [AmD] GlobalPlatform Card Specification Amendment D, Secure Channel Protocol '03', v1.1.2.

A channel object is created from the card's INITIALIZE UPDATE response, checks the card cryptogram,
builds EXTERNAL AUTHENTICATE, then wraps every following command (C-MAC, C-DECRYPTION) and unwraps
every response (R-MAC, R-ENCRYPTION for SCP03). It never sends anything itself: the GP client does.
"""

from __future__ import annotations

import copy
import hmac
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntFlag

from cardsuite.apdu import CommandAPDU, ResponseAPDU
from cardsuite.cla import secure_messaging_cla
from cardsuite.crypto.aes import aes_cbc, aes_cmac, aes_ecb, scp03_kdf
from cardsuite.crypto.des import PaddingError, full_3des_mac, pad_m2, retail_mac, tdes_cbc_encrypt, tdes_ecb, unpad_m2
from cardsuite.errors import CardsuiteError
from cardsuite.masking import opaque_eq

INS_INITIALIZE_UPDATE = 0x50
INS_EXTERNAL_AUTHENTICATE = 0x82
CLA_GP = 0x80


class SecurityLevel(IntFlag):
    """P1 of EXTERNAL AUTHENTICATE ([GPCS] Table 11-23 / E-9, [AmD] Table 5-1)."""

    NO_SECURITY = 0x00
    C_MAC = 0x01
    C_DECRYPTION = 0x02  # always with C_MAC
    R_MAC = 0x10
    R_ENCRYPTION = 0x20  # SCP03 only, always with R_MAC and C_DECRYPTION


LEVELS = {"mac": SecurityLevel.C_MAC, "enc": SecurityLevel.C_MAC | SecurityLevel.C_DECRYPTION,
          "mac+rmac": SecurityLevel.C_MAC | SecurityLevel.R_MAC,
          "enc+rmac": SecurityLevel.C_MAC | SecurityLevel.C_DECRYPTION | SecurityLevel.R_MAC,
          "full": SecurityLevel.C_MAC | SecurityLevel.C_DECRYPTION | SecurityLevel.R_MAC
          | SecurityLevel.R_ENCRYPTION}
# gp's --mode names for the same levels: clr (no secure messaging after authentication), mac, enc, rmac
# (C-MAC and R-MAC), renc (everything: C-MAC, C-DECRYPTION, R-MAC, R-ENCRYPTION)
MODES = {"clr": SecurityLevel.NO_SECURITY, "mac": LEVELS["mac"], "enc": LEVELS["enc"], "rmac": LEVELS["mac+rmac"],
         "renc": LEVELS["full"]}


class SecureChannelError(CardsuiteError):
    """The secure channel cannot go on: a cryptogram or MAC did not verify, or the card's answer is malformed."""


class CardCryptogramError(SecureChannelError):
    """The card's cryptogram does not verify with these keys: the keys are wrong (or the card is not who it
    claims to be). The host stops here, before EXTERNAL AUTHENTICATE."""


@opaque_eq  # pytest's failed-`==` explanation would print the key bytes field by field
@dataclass(frozen=True, repr=False)
class KeySet:
    """Static secure channel keys of a security domain: ENC, MAC, DEK and their key version number
    (KVN, [GPCS] 11.1.8; 0 asks the card for its first/default key set)."""

    enc: bytes
    mac: bytes
    dek: bytes
    kvn: int = 0

    def __post_init__(self) -> None:
        for name in ("enc", "mac", "dek"):
            key = getattr(self, name)
            if len(key) not in KEY_LENGTHS:
                raise ValueError(f"the {name.upper()} key must be 16, 24 or 32 bytes, got {len(key)}")
        if not 0 <= self.kvn <= 0x7F:
            raise ValueError(f"key version number must be 0..127 (0x00..0x7F), got {self.kvn}")

    @classmethod
    def single(cls, key: bytes, kvn: int = 0) -> KeySet:
        return cls(key, key, key, kvn)

    def __repr__(self) -> str:  # never print key material, even by accident
        return f"KeySet(kvn=0x{self.kvn:02X}, {len(self.enc) * 8}-bit, kcv={self.kcv().hex().upper()})"

    def kcv(self) -> bytes:
        """Key check value of ENC: 3DES over zeros for 16-byte keys, AES over 01s otherwise ([AmD] 6.2.4)."""
        if len(self.enc) == 16:
            return tdes_ecb(self.enc, bytes(8))[:3]
        return aes_ecb(self.enc, bytes([1]) * 16)[:3]

    def for_card(self, key_diversification_data: bytes) -> KeySet:
        """The static keys of the card that answered INITIALIZE UPDATE with this key diversification data:
        these keys themselves; a master key set (cardsuite.gp.keys.MasterKeys) derives them."""
        return self

    def channel(self, host_challenge: bytes, response: GPInitializeUpdateResponse,
                scp02_i: int = 0x55) -> SecureChannel:
        """The secure channel these (the card's own) keys open; keys kept in a key store open one computing
        there (cardsuite.scms.kms.TokenCardKeys)."""
        return software_channel(self, host_challenge, response, scp02_i)

    @property
    def fingerprint_material(self) -> bytes:
        """What tells this key set from another, for the brick guard's keyed fingerprint."""
        return bytes((self.kvn,)) + self.enc + self.mac + self.dek


def kcv(key: bytes, aes: bool) -> bytes:
    """Key check value of one key ([GPCS] B.6, [AmD] 7.2.4): the first 3 bytes of 3DES-ECB over 8 zero bytes,
    or of AES-ECB over 16 bytes 01."""
    return aes_ecb(key, bytes([1]) * 16)[:3] if aes else tdes_ecb(key, bytes(8))[:3]


# [AmD] Table 6-1: derivation constants
DERIVE_CARD_CRYPTOGRAM = 0x00
DERIVE_HOST_CRYPTOGRAM = 0x01
DERIVE_CARD_CHALLENGE = 0x02
DERIVE_S_ENC = 0x04
DERIVE_S_MAC = 0x06
DERIVE_S_RMAC = 0x07

# [GPCS] Table E-1: SCP02 session key derivation constants
SCP02_C_MAC = b"\x01\x01"
SCP02_R_MAC = b"\x01\x02"
SCP02_DEK = b"\x01\x81"
SCP02_ENC = b"\x01\x82"


def scp02_session_key(static_key: bytes, constant: bytes, sequence_counter: bytes) -> bytes:
    """[GPCS] E.4.1: 3DES-CBC (ICV zero) of constant || sequence counter || 12 zero bytes."""
    return tdes_cbc_encrypt(static_key, constant + sequence_counter + bytes(12))


# ---------------------------------------------------------------- INITIALIZE UPDATE


KEY_LENGTHS = (16, 24, 32)  # two- and three-key 3DES (SCP02); AES-128/192/256 (SCP03)


@dataclass(frozen=True)
class GPInitializeUpdateResponse:
    """[GPCS] Table E-4 (SCP02) and [AmD] Table 7-3 (SCP03)."""

    key_diversification_data: bytes
    kvn: int
    scp: int
    i: int | None  # SCP03 only: the i parameter the card uses
    sequence_counter: bytes
    card_challenge: bytes
    card_cryptogram: bytes

    @classmethod
    def parse(cls, data: bytes) -> GPInitializeUpdateResponse:
        if len(data) < 12:
            raise SecureChannelError(f"INITIALIZE UPDATE answered {len(data)} bytes, too short")
        kdd, kvn, scp = data[:10], data[10], data[11]
        if scp == 0x02:
            if len(data) != 28:
                raise SecureChannelError(f"an SCP02 INITIALIZE UPDATE response has 28 bytes, got {len(data)}")
            return cls(kdd, kvn, scp, None, data[12:14], data[14:20], data[20:28])
        if scp == 0x03:
            # [AmD] 7.1.1.6: S8 mode 8-byte challenge and cryptogram (29 bytes, 32 with the sequence counter);
            # S16 mode (i bit 1) 16-byte ones (45 or 48)
            size = 16 if len(data) > 13 and data[12] & 0x01 else 8
            base = 13 + 2 * size
            if len(data) not in (base, base + 3):
                raise SecureChannelError(f"an SCP03 S{size} INITIALIZE UPDATE response has {base} or {base + 3} "
                                         f"bytes, got {len(data)}")
            counter = data[base:] if len(data) == base + 3 else b""
            return cls(kdd, kvn, scp, data[12], counter, data[13 : 13 + size], data[13 + size : base])
        raise SecureChannelError(f"the card offers SCP{scp:02X}; only SCP02 and SCP03 are supported")


def initialize_update(kvn: int, host_challenge: bytes) -> CommandAPDU:
    """[GPCS] 11.11 / [AmD] 7.1.1: P1 the key version (0 for the default), Le 00."""
    return CommandAPDU(CLA_GP, INS_INITIALIZE_UPDATE, kvn, 0x00, host_challenge, le=256)


# ---------------------------------------------------------------- channels


class SecureChannel(ABC):
    """An open (or opening) secure channel session; wraps commands, unwraps responses."""

    scp: int
    block: int  # cipher block size: padding and maximum data
    mac_length = 8  # C-MAC and R-MAC; 16 in SCP03 S16 mode

    def __init__(self, keys: KeySet, host_challenge: bytes, response: GPInitializeUpdateResponse) -> None:
        self.keys = keys
        self.host_challenge = host_challenge
        self.response = response
        self.level = SecurityLevel.NO_SECURITY
        self.authenticated = False

    # -- what each protocol implements
    @abstractmethod
    def host_cryptogram(self) -> bytes: ...

    @abstractmethod
    def _mac_command(self, header: bytes, data: bytes) -> bytes:
        """The 8-byte C-MAC over the (already modified) header and data; updates the chaining value."""

    @abstractmethod
    def _encrypt_command_data(self, data: bytes) -> bytes: ...

    @abstractmethod
    def encrypt_key_data(self, data: bytes) -> bytes:
        """Key data for PUT KEY / STORE DATA, under the (session) DEK."""

    def _before_command(self) -> None:  # noqa: B027 - a hook most protocols leave empty
        """Per-command bookkeeping (SCP03's encryption counter)."""

    def unwrap(self, response: ResponseAPDU) -> ResponseAPDU:
        return response

    # -- shared
    def external_authenticate(self, level: SecurityLevel = SecurityLevel.C_MAC) -> CommandAPDU:
        """EXTERNAL AUTHENTICATE with the host cryptogram, itself C-MACed ([GPCS] E.5.2, [AmD] 7.1.2)."""
        if level & SecurityLevel.C_DECRYPTION and not level & SecurityLevel.C_MAC:
            raise ValueError("C-DECRYPTION needs C-MAC")
        needs = SecurityLevel.R_MAC | SecurityLevel.C_DECRYPTION
        if level & SecurityLevel.R_ENCRYPTION and level & needs != needs:
            raise ValueError("R-ENCRYPTION needs R-MAC and C-DECRYPTION")
        self.level = SecurityLevel(level)
        command = CommandAPDU(CLA_GP, INS_EXTERNAL_AUTHENTICATE, int(level), 0x00, self.host_cryptogram())
        return self._wrap(command, encrypt=False, mac=True)

    def opened(self) -> None:
        """The card accepted EXTERNAL AUTHENTICATE: what follows is wrapped at the chosen level."""
        self.authenticated = True

    def wrap(self, command: CommandAPDU) -> CommandAPDU:
        if not self.authenticated:
            raise SecureChannelError("the secure channel is not open")
        return self._wrap(command, encrypt=bool(self.level & SecurityLevel.C_DECRYPTION),
                          mac=bool(self.level & SecurityLevel.C_MAC))

    def wrap_run(self, commands: Sequence[CommandAPDU]) -> list[tuple[CommandAPDU, SecureChannel]]:
        """Each command of a run wrapped, with a copy of the channel as it is after that command (its
        answer is unwrapped with it, and a run cut short leaves the channel as after its last answer)."""
        wrapped = []
        for command in commands:
            wrapped.append((self.wrap(command), copy.copy(self)))
        return wrapped

    def _wrap(self, command: CommandAPDU, encrypt: bool, mac: bool) -> CommandAPDU:
        if not mac:
            return command
        if self.authenticated:
            self._before_command()
        data = command.data
        if encrypt and data:
            data = self._encrypt_command_data(data)
        cla, header = self._secured_header(command, data)
        mac_value = self._mac_over(command, header, data)
        return CommandAPDU(cla, command.ins, command.p1, command.p2, data + mac_value, command.le)

    def _secured_header(self, command: CommandAPDU, data: bytes) -> tuple[int, bytes]:
        """The CLA with secure messaging and the header the C-MAC covers (Lc counting the C-MAC)."""
        if len(data) + self.mac_length > 255:
            raise ValueError(f"command data of {len(command.data)} bytes does not fit a secured short APDU "
                             f"(at most {self.max_data()} bytes at this security level)")
        cla = secure_messaging_cla(command.cla)
        return cla, bytes((cla, command.ins, command.p1, command.p2, len(data) + self.mac_length))

    def _mac_over(self, command: CommandAPDU, header: bytes, data: bytes) -> bytes:
        return self._mac_command(header, data)

    def max_data(self, limit: int = 255) -> int:
        """The longest plain command data that still fits ``limit`` bytes once wrapped at this level."""
        room = limit - (self.mac_length if self.level & SecurityLevel.C_MAC else 0)
        if self.level & SecurityLevel.C_DECRYPTION:
            room = room - room % self.block - 1  # padding adds 1..block bytes
        return room


class DesOperations:
    """SCP02's 3DES operations on its keys, here on key bytes; a key store gives its own on key handles (an HSM:
    cardsuite.scms.kms.TokenDes), so that the static and session keys need not leave it. The protocol is the
    same."""

    def key_length(self, key: bytes) -> int:
        return len(key)

    def derive(self, key: bytes, constant: bytes, sequence_counter: bytes, *, mac: bool = False) -> bytes:
        """A session key ([GPCS] E.4.1); ``mac``: the C-MAC key, whose left half alone also runs single DES."""
        return scp02_session_key(key, constant, sequence_counter)

    def full_mac(self, key: bytes, data: bytes) -> bytes:
        """The card and host cryptograms ([GPCS] E.4.2): ISO/IEC 9797-1 MAC algorithm 1, 3DES, method 2."""
        return full_3des_mac(key, data)

    def retail_mac(self, key: bytes, data: bytes, icv: bytes) -> bytes:
        """The C-MAC ([GPCS] E.4.4): ISO/IEC 9797-1 MAC algorithm 3, padding method 2."""
        return retail_mac(key, data, icv)

    def encrypt_icv(self, key: bytes, icv: bytes) -> bytes:
        """ICV encryption ([GPCS] E.3.4): single DES under the left half of the C-MAC session key."""
        return tdes_ecb(key[:8], icv)

    def cbc(self, key: bytes, data: bytes) -> bytes:
        """C-DECRYPTION ([GPCS] E.4.6): 3DES-CBC, zero ICV, of whole blocks."""
        return tdes_cbc_encrypt(key, data)

    def ecb(self, key: bytes, data: bytes) -> bytes:
        """Sensitive data ([GPCS] E.4.7): 3DES-ECB under the session DEK."""
        return tdes_ecb(key, data)


SOFTWARE_DES = DesOperations()


class SCP02(SecureChannel):
    """[GPCS] Appendix E, options i=15 and i=55 (three keys, explicit initiation, ICV encryption; 55 adds a
    pseudo-random card challenge, which changes nothing for the host)."""

    scp = 0x02
    block = 8

    def __init__(self, keys: KeySet, host_challenge: bytes, response: GPInitializeUpdateResponse,
                 i: int = 0x55, ops: DesOperations | None = None) -> None:
        super().__init__(keys, host_challenge, response)
        self.ops = ops or SOFTWARE_DES
        if self.ops.key_length(keys.enc) != 16:
            raise SecureChannelError("SCP02 needs 16-byte (two-key 3DES) keys")
        if not i & 0x01:
            raise SecureChannelError(f"SCP02 i={i:02X} uses a single key; only three-key options are supported")
        self.i = i
        counter = response.sequence_counter
        self.s_enc = self.ops.derive(keys.enc, SCP02_ENC, counter)
        self.s_mac = self.ops.derive(keys.mac, SCP02_C_MAC, counter, mac=True)
        self.s_dek = self.ops.derive(keys.dek, SCP02_DEK, counter)
        self.icv = bytes(8)
        expected = self.ops.full_mac(self.s_enc, host_challenge + counter + response.card_challenge)
        if not hmac.compare_digest(expected, response.card_cryptogram):
            raise CardCryptogramError("the card cryptogram does not verify: wrong keys for this card (SCP02)")

    def host_cryptogram(self) -> bytes:
        r = self.response
        return self.ops.full_mac(self.s_enc, r.sequence_counter + r.card_challenge + self.host_challenge)

    def _mac_over(self, command: CommandAPDU, header: bytes, data: bytes) -> bytes:
        if self.i & 0x02:  # C-MAC on the unmodified APDU: original CLA and Lc, plain data
            header = bytes((command.cla, command.ins, command.p1, command.p2, len(command.data)))
            data = command.data
        elif data != command.data:  # SCP02 MACs the plain data, then encrypts ([GPCS] E.4.6)
            header = header[:4] + bytes((len(command.data) + 8,))
            data = command.data
        return self._mac_command(header, data)

    def _mac_command(self, header: bytes, data: bytes) -> bytes:
        icv = self.icv
        if self.i & 0x10 and icv != bytes(8):  # ICV encryption for the C-MAC session ([GPCS] E.3.4)
            icv = self.ops.encrypt_icv(self.s_mac, icv)  # single DES under K1
        self.icv = self.ops.retail_mac(self.s_mac, header + data, icv)
        return self.icv

    def _encrypt_command_data(self, data: bytes) -> bytes:
        return self.ops.cbc(self.s_enc, pad_m2(data))

    def encrypt_key_data(self, data: bytes) -> bytes:
        """[GPCS] E.4.7 / 11.8.2.3: 3DES-ECB under the session DEK."""
        if len(data) % 8:
            raise ValueError("SCP02 key data must be whole 3DES blocks")
        return self.ops.ecb(self.s_dek, data)


class AesOperations:
    """SCP03's AES operations on its keys, here on key bytes. A key store gives its own on key handles (an HSM:
    cardsuite.scms.kms), so that the static and session keys need not leave it; the protocol is the same."""

    def key_bits(self, key: bytes) -> int:
        return len(key) * 8

    def derive(self, key: bytes, constant: int, bits: int, context: bytes) -> bytes:
        """A session key ([AmD] 6.2.1): kept however the key store keeps keys."""
        return scp03_kdf(key, constant, bits, context)

    def kdf(self, key: bytes, constant: int, bits: int, context: bytes) -> bytes:
        """A cryptogram ([AmD] 6.2.2.2, 6.2.2.3): the bytes themselves."""
        return scp03_kdf(key, constant, bits, context)

    def cmac(self, key: bytes, data: bytes) -> bytes:
        return aes_cmac(key, data)

    def cmac_chain(self, key: bytes, chaining_value: bytes, messages: Sequence[bytes]) -> list[bytes]:
        """The C-MAC chain of several commands ([AmD] 6.2.5): the whole CMAC of each message after the one
        before it, the first after ``chaining_value`` (each the next one's chaining value)."""
        macs = []
        for message in messages:
            chaining_value = self.cmac(key, chaining_value + message)
            macs.append(chaining_value)
        return macs

    def ecb(self, key: bytes, block: bytes) -> bytes:
        return aes_ecb(key, block)

    def cbc(self, key: bytes, data: bytes, iv: bytes, decrypt: bool = False) -> bytes:
        return aes_cbc(key, data, iv, decrypt)


SOFTWARE_AES = AesOperations()


class SCP03(SecureChannel):
    """[AmD] with AES keys in S8 mode: i=00 (random card challenge), i=10 (pseudo-random), i=70 (pseudo-random,
    R-MAC and R-ENCRYPTION supported)."""

    scp = 0x03
    block = 16

    def __init__(self, keys: KeySet, host_challenge: bytes, response: GPInitializeUpdateResponse,
                 ops: AesOperations | None = None) -> None:
        super().__init__(keys, host_challenge, response)
        self.ops = ops or SOFTWARE_AES
        # S16 ([AmD] 6.2.2.2): 16-byte challenges, cryptograms and MACs
        self.mac_length = 16 if response.i is not None and response.i & 0x01 else 8
        if len(host_challenge) != self.mac_length:
            raise SecureChannelError(f"SCP03 S{self.mac_length} needs a {self.mac_length}-byte host challenge, "
                                     f"got {len(host_challenge)}")
        bits = self.ops.key_bits(keys.enc)
        context = host_challenge + response.card_challenge
        self.s_enc = self.ops.derive(keys.enc, DERIVE_S_ENC, bits, context)
        self.s_mac = self.ops.derive(keys.mac, DERIVE_S_MAC, bits, context)
        self.s_rmac = self.ops.derive(keys.mac, DERIVE_S_RMAC, bits, context)
        self.context = context
        self.chaining_value = bytes(16)  # MAC chaining value, [AmD] 6.2.5
        self.counter = 0  # encryption counter, [AmD] 6.2.6
        expected = self.ops.kdf(self.s_mac, DERIVE_CARD_CRYPTOGRAM, self.mac_length * 8, context)
        if not hmac.compare_digest(expected, response.card_cryptogram):
            raise CardCryptogramError("the card cryptogram does not verify: wrong keys for this card (SCP03)")

    def host_cryptogram(self) -> bytes:
        return self.ops.kdf(self.s_mac, DERIVE_HOST_CRYPTOGRAM, self.mac_length * 8, self.context)

    def _mac_command(self, header: bytes, data: bytes) -> bytes:
        self.chaining_value = self.ops.cmac(self.s_mac, self.chaining_value + header + data)
        return self.chaining_value[: self.mac_length]

    def wrap_run(self, commands: Sequence[CommandAPDU]) -> list[tuple[CommandAPDU, SecureChannel]]:
        """At C-MAC level, the run's C-MACs computed as one chain (AesOperations.cmac_chain: a key store may
        compute it in one operation, not one per command); with C-DECRYPTION, command by command."""
        if not self.authenticated or self.level & SecurityLevel.C_DECRYPTION or not self.level & SecurityLevel.C_MAC:
            return super().wrap_run(commands)
        headers = [self._secured_header(command, command.data) for command in commands]
        covered = [header + command.data for (_, header), command in zip(headers, commands, strict=True)]
        wrapped = []
        for (cla, _), command, mac in zip(headers, commands, self.ops.cmac_chain(self.s_mac, self.chaining_value,
                                                                                 covered), strict=True):
            self._before_command()
            self.chaining_value = mac
            wire = CommandAPDU(cla, command.ins, command.p1, command.p2, command.data + mac[: self.mac_length],
                               command.le)
            wrapped.append((wire, copy.copy(self)))
        return wrapped

    def _before_command(self) -> None:
        # the counter moves for every command of the session, with or without data ([AmD] 6.2.6)
        self.counter += 1

    def _encrypt_command_data(self, data: bytes) -> bytes:
        iv = self.ops.ecb(self.s_enc, self.counter.to_bytes(16, "big"))
        return self.ops.cbc(self.s_enc, pad_m2(data, 16), iv)

    def unwrap(self, response: ResponseAPDU) -> ResponseAPDU:
        """R-MAC check and R-ENCRYPTION ([AmD] 6.2.5, 6.2.7): a MAC comes with successful and warning status
        words; an error carries none."""
        if not self.level & SecurityLevel.R_MAC or not response.data:
            return response
        size = self.mac_length
        if len(response.data) < size:
            raise SecureChannelError(f"response of {len(response.data)} bytes has no room for an R-MAC")
        body, rmac = response.data[:-size], response.data[-size:]
        expected = self.ops.cmac(self.s_rmac, self.chaining_value + body + response.sw.to_bytes(2, "big"))[:size]
        if not hmac.compare_digest(expected, rmac):
            raise SecureChannelError("the response's R-MAC does not verify: the channel is broken")
        if self.level & SecurityLevel.R_ENCRYPTION and body:
            if len(body) % 16:
                raise SecureChannelError("encrypted response data is not a whole number of AES blocks")
            iv = self.ops.ecb(self.s_enc, b"\x80" + self.counter.to_bytes(15, "big"))
            try:
                body = unpad_m2(self.ops.cbc(self.s_enc, body, iv, decrypt=True), 16)
            except PaddingError:
                raise SecureChannelError("decrypted response data is not padded with 80 00..") from None
        return ResponseAPDU(body, response.sw)

    def encrypt_key_data(self, data: bytes) -> bytes:
        """[AmD] 7.2.3: AES-CBC under the static DEK with a zero ICV."""
        if len(data) % 16:
            raise ValueError("SCP03 key data must be padded to whole AES blocks before encryption")
        return self.ops.cbc(self.keys.dek, data, bytes(16))


def open_channel(keys: KeySet, host_challenge: bytes, response: GPInitializeUpdateResponse,
                 scp02_i: int = 0x55) -> SecureChannel:
    """The channel the card's INITIALIZE UPDATE response asks for; raises CardCryptogramError on wrong keys."""
    return keys.channel(host_challenge, response, scp02_i)


def software_channel(keys: KeySet, host_challenge: bytes, response: GPInitializeUpdateResponse,
                     scp02_i: int = 0x55) -> SecureChannel:
    """A channel computing with the key bytes in this process (KeySet.channel)."""
    if response.scp == 0x02:
        return SCP02(keys, host_challenge, response, i=scp02_i)
    return SCP03(keys, host_challenge, response)
