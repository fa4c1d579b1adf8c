"""The issuer's secure messaging with the wallet ([P000], section 4.2), host side.

A session opens with INITIALIZE UPDATE (the host challenge r1; the card answers its challenge r2 and a
card cryptogram) and EXTERNAL AUTHENTICATE (the host cryptogram), so each side proves it holds the
master keys K_E and K_A. Then, as in the paper:

    R_d = r2_MSB ‖ r1_LSB ‖ r2_LSB ‖ r1_MSB          (the paper's LSB is the left half of a challenge,
                                                    its MSB the right half: the SCP01 order)
    S_E = 3DES-ECB(K_E, R_d)        S_A = 3DES-ECB(K_A, R_d)
    card cryptogram = MAC(S_A, r1 ‖ r2)             host cryptogram = MAC(S_A, r2 ‖ r1)

and every issuer command (CLA 84) carries ``3DES-CBC(S_E, D ‖ pad) ‖ MAC(S_A, C ‖ CLA ‖ INS ‖ P1 ‖ P2 ‖ Lc
‖ D_e)``, MAC being ISO/IEC 9797-1 MAC algorithm 3 (the retail MAC). Where we depart from the paper:

* padding is ISO/IEC 9797-1 method 2 (80 then zeros, always added): the paper's zero padding cannot
  tell data ending in 00 bytes from padding;
* C is a 2-byte command counter, 1 for the first command of a session and implicit on both sides: a
  recorded command replayed in the same session fails its MAC (other sessions have other keys);
* the session itself is mutually authenticated by the two cryptograms.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cardsuite.apdu import CommandAPDU
from cardsuite.crypto.des import (
    PaddingError,
    pad_m2,
    retail_mac,
    tdes_cbc_decrypt,
    tdes_cbc_encrypt,
    tdes_ecb,
    unpad_m2,
)
from cardsuite.errors import CardsuiteError
from cardsuite.masking import opaque_eq

CHALLENGE = 8
MAC_LENGTH = 8
KEY_LENGTH = 16
CLA_SECURE = 0x84
COUNTER_LIMIT = 0x7FFF

KEY_VERSION_TRANSPORT = 0xFF
KEY_VERSION_ISSUER = 0x01


class SecureMessagingError(CardsuiteError):
    """The card's cryptogram is wrong, or a session is used the wrong way."""


@opaque_eq  # pytest's failed-`==` explanation would print K_E and K_A field by field
@dataclass(frozen=True)
class IssuerKeys:
    """A master key set: K_E (encryption) and K_A (MAC), two-key triple DES each. Never printed."""

    enc: bytes = field(repr=False)
    mac: bytes = field(repr=False)
    version: int = KEY_VERSION_ISSUER

    def __post_init__(self) -> None:
        for name in ("enc", "mac"):
            if len(getattr(self, name)) != KEY_LENGTH:
                raise ValueError(f"K_{name[0].upper()} must be {KEY_LENGTH} bytes (two-key triple DES)")

    @classmethod
    def from_install_params(cls, params: bytes) -> IssuerKeys:
        """The transport key set a wallet receives in its install parameters: K_E ‖ K_A."""
        if len(params) != 2 * KEY_LENGTH:
            raise ValueError(f"wallet install parameters are K_E ‖ K_A ({2 * KEY_LENGTH} bytes), got {len(params)}")
        return cls(params[:KEY_LENGTH], params[KEY_LENGTH:], KEY_VERSION_TRANSPORT)

    @classmethod
    def generate(cls, version: int = KEY_VERSION_ISSUER) -> IssuerKeys:
        return cls(os.urandom(KEY_LENGTH), os.urandom(KEY_LENGTH), version)


def derivation_data(host_challenge: bytes, card_challenge: bytes) -> bytes:
    """R_d = r2_MSB ‖ r1_LSB ‖ r2_LSB ‖ r1_MSB, the paper's LSB being a challenge's left half."""
    r1, r2 = host_challenge, card_challenge
    if len(r1) != CHALLENGE or len(r2) != CHALLENGE:
        raise ValueError("challenges are 8 bytes")
    return r2[4:] + r1[:4] + r2[:4] + r1[4:]


@opaque_eq
@dataclass(frozen=True)
class SessionKeys:
    enc: bytes = field(repr=False)  # S_E
    mac: bytes = field(repr=False)  # S_A


def session_keys(keys: IssuerKeys, host_challenge: bytes, card_challenge: bytes) -> SessionKeys:
    r_d = derivation_data(host_challenge, card_challenge)
    return SessionKeys(tdes_ecb(keys.enc, r_d), tdes_ecb(keys.mac, r_d))


# ---------------------------------------------------------------- protocol messages


@dataclass(frozen=True)
class WalletInitializeUpdateResponse:
    """The card's answer to INITIALIZE UPDATE: key version ‖ r2 ‖ card cryptogram."""

    key_version: int
    card_challenge: bytes
    card_cryptogram: bytes

    @classmethod
    def parse(cls, data: bytes) -> WalletInitializeUpdateResponse:
        if len(data) != 1 + CHALLENGE + MAC_LENGTH:
            raise SecureMessagingError(f"INITIALIZE UPDATE answered {len(data)} bytes, expected 17")
        return cls(data[0], data[1:9], data[9:17])


@opaque_eq
@dataclass
class IssuerSession:
    """An open (or opening) session: its keys, challenges and the command counter. The challenges are
    not in the repr: with a transport key set (public) they give the session keys."""

    keys: SessionKeys = field(repr=False)
    host_challenge: bytes = field(repr=False)
    card_challenge: bytes = field(repr=False)
    key_version: int
    counter: int = 0

    @classmethod
    def start(cls, master: IssuerKeys, host_challenge: bytes,
              response: WalletInitializeUpdateResponse) -> IssuerSession:
        """Derives the session keys and checks the card cryptogram: the card proves it has the keys."""
        keys = session_keys(master, host_challenge, response.card_challenge)
        session = cls(keys, host_challenge, response.card_challenge, response.key_version)
        if retail_mac(keys.mac, host_challenge + response.card_challenge) != response.card_cryptogram:
            raise SecureMessagingError(
                "the card cryptogram is wrong: the card does not hold these keys "
                f"(key version {response.key_version:02X}); no host cryptogram was sent"
            )
        return session

    def host_cryptogram(self) -> bytes:
        return retail_mac(self.keys.mac, self.card_challenge + self.host_challenge)

    def wrap(self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"") -> CommandAPDU:
        """Encrypt, then MAC, with the next counter value."""
        if self.counter >= COUNTER_LIMIT:
            raise SecureMessagingError("the session's command counter is exhausted; open a new session")
        self.counter += 1
        encrypted = tdes_cbc_encrypt(self.keys.enc, pad_m2(data))
        lc = len(encrypted) + MAC_LENGTH
        if lc > 255:
            raise ValueError(f"{len(data)} bytes of data do not fit one secured short APDU")
        header = bytes((cla, ins, p1, p2, lc))
        mac = retail_mac(self.keys.mac, self.counter.to_bytes(2, "big") + header + encrypted)
        return CommandAPDU(cla, ins, p1, p2, encrypted + mac)

    def unwrap(self, command: CommandAPDU, counter: int) -> bytes:
        """What the card does, for tests and tools: checks the MAC with ``counter`` and decrypts."""
        body, mac = command.data[:-MAC_LENGTH], command.data[-MAC_LENGTH:]
        header = bytes((command.cla, command.ins, command.p1, command.p2, len(command.data)))
        if retail_mac(self.keys.mac, counter.to_bytes(2, "big") + header + body) != mac:
            raise SecureMessagingError("wrong MAC")
        try:
            return unpad_m2(tdes_cbc_decrypt(self.keys.enc, body))
        except PaddingError:
            raise SecureMessagingError("bad ISO/IEC 9797-1 method 2 padding") from None
