"""The wallet applet's e-cash commands (docs/wallet-apdu.md, section "E-cash"): one method per command.

ECASH PERSONALISE is an issuer command and runs in the wallet's secure-messaging session; the others are
plain. No APDU carries the token key: card and broker each derive it (docs/ecash-protocol.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from cardsuite.apdu import CommandAPDU, StatusError
from cardsuite.ecash.primitives import (
    PID_LENGTH,
    POINT_LENGTH,
    REFERENCE_LENGTH,
    UNITS,
    EcashError,
    RangeCertificate,
    Token,
)
from cardsuite.wallet.card import CLA_PROPRIETARY, WalletClient

INS_ECASH_PERSONALISE = 0x38
INS_ECASH_LOAD_RANGE = 0x3A
INS_ECASH_GET_KEY = 0x4A
INS_ECASH_PAY = 0x56
INS_ECASH_LAST_TOKEN = 0x58
INS_ECASH_STATUS = 0x5A

# ECASH PERSONALISE travels encrypted anyway; mask_rules.txt keeps even its ciphertext out of traces, as
# for the wallet's other issuer commands. The token key itself never crosses the interface.


class PurseState(IntEnum):
    NONE = 0x00
    READY = 0x01
    FUNDED = 0x02


@dataclass(frozen=True)
class PurseStatus:
    state: PurseState
    vendors_used: int
    max_vendors: int
    pid: bytes
    last_sn: int
    limits: tuple[int, ...]
    spent: tuple[int, ...]

    @classmethod
    def parse(cls, data: bytes) -> PurseStatus:
        n = len(UNITS)
        if len(data) != 3 + PID_LENGTH + 4 + 8 * n:
            raise EcashError(f"ECASH STATUS answered {len(data)} bytes, expected {3 + PID_LENGTH + 4 + 8 * n}")
        at = 3 + PID_LENGTH + 4
        words = [int.from_bytes(data[at + 4 * i:at + 4 * i + 4], "big") for i in range(2 * n)]
        return cls(PurseState(data[0]), data[1], data[2], data[3:3 + PID_LENGTH],
                   int.from_bytes(data[3 + PID_LENGTH:at], "big"), tuple(words[:n]), tuple(words[n:]))

    @property
    def available(self) -> tuple[int, ...]:
        return tuple(lim - s for lim, s in zip(self.limits, self.spent, strict=True))


@dataclass(frozen=True)
class VendorSlot:
    vendor_id: bytes
    counts: tuple[int, ...]

    @classmethod
    def parse(cls, data: bytes) -> VendorSlot:
        if len(data) != 8 + 4 * len(UNITS):
            raise EcashError(f"a vendor slot is {8 + 4 * len(UNITS)} bytes, got {len(data)}")
        return cls(data[:8], tuple(int.from_bytes(data[8 + 4 * e:12 + 4 * e], "big") for e in range(len(UNITS))))


class EcashCard:
    """The purse on a wallet card. ``wallet`` is selected (and, for PAY / STATUS, PIN-verified) by the caller."""

    def __init__(self, wallet: WalletClient) -> None:
        self.wallet = wallet

    @property
    def transport(self):
        return self.wallet.transport

    def personalise(self, broker_sig_point: bytes, broker_dh_point: bytes) -> None:
        """Issuer command, in an open issuer session: the broker's keys; the card generates c and K_T."""
        if len(broker_sig_point) != POINT_LENGTH or len(broker_dh_point) != POINT_LENGTH:
            raise EcashError("broker keys are uncompressed P-256 points (65 bytes)")
        self.wallet.secure(INS_ECASH_PERSONALISE, data=broker_sig_point + broker_dh_point)

    def public_value(self) -> bytes:
        """g^c, for the CA to certify."""
        return self.transport.send(CommandAPDU(CLA_PROPRIETARY, INS_ECASH_GET_KEY, le=POINT_LENGTH)).data

    @staticmethod
    def load_range_command(cert: RangeCertificate) -> CommandAPDU:
        return CommandAPDU(CLA_PROPRIETARY, INS_ECASH_LOAD_RANGE, 0, 0, cert.encode())

    def load_range(self, cert: RangeCertificate) -> None:
        self.transport.send(self.load_range_command(cert))

    @staticmethod
    def pay_command(amount: int, reference: bytes, vendor_point: bytes) -> CommandAPDU:
        if len(reference) != REFERENCE_LENGTH or len(vendor_point) != POINT_LENGTH:
            raise EcashError("ECASH PAY takes an 8-byte reference and the vendor's 65-byte public value")
        if not 0 < amount <= 0xFFFFFFFF:
            raise EcashError(f"an amount is 1..4294967295, got {amount}")
        return CommandAPDU(CLA_PROPRIETARY, INS_ECASH_PAY, 0, 0, amount.to_bytes(4, "big") + reference + vendor_point,
                           le=256)

    def pay(self, amount: int, reference: bytes, vendor_point: bytes) -> Token:
        return Token.parse(self.transport.send(self.pay_command(amount, reference, vendor_point)).data)

    def last_token(self) -> Token | None:
        try:
            data = self.transport.send(CommandAPDU(CLA_PROPRIETARY, INS_ECASH_LAST_TOKEN, le=256)).data
        except StatusError as exc:
            if exc.sw == 0x6A88:
                return None
            raise
        return Token.parse(data)

    def status(self) -> PurseStatus:
        return PurseStatus.parse(self.transport.send(CommandAPDU(CLA_PROPRIETARY, INS_ECASH_STATUS, le=256)).data)

    def vendor_slot(self, number: int) -> VendorSlot:
        """Slot 1..MAX_VENDORS, in the order vendors were first paid."""
        command = CommandAPDU(CLA_PROPRIETARY, INS_ECASH_STATUS, number, 0, le=256)
        return VendorSlot.parse(self.transport.send(command).data)

    def vendor_slots(self) -> list[VendorSlot]:
        return [self.vendor_slot(i) for i in range(1, self.status().vendors_used + 1)]
