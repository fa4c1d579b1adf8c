"""What a field loader writes into a security domain or an application besides load files: key sets (PUT KEY,
[GPCS] 11.8) and personalisation data (STORE DATA, [GPCS] 11.11). Command data is built here, from the open
secure channel (which encrypts key data under the DEK); the client (cardsuite.gp.client) sends it.

PUT KEY data ([GPCS] 11.8.2.3, Table 11-70; [AmD] 7.2.3): the new key version, then per key its type, the length
of the key data, the key data encrypted under the DEK, and the key check value (3 bytes). An AES key's data
starts with the key's own length (the ciphertext is padded to whole AES blocks). The card answers the key
version and the key check values of what it stored ([GPCS] 11.8.3.1), which the host compares with its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cardsuite.errors import CardsuiteError
from cardsuite.gp.scp import KeySet, SecureChannel, kcv
from cardsuite.tlv import TlvError, encode_tlv, parse_tlv

# [GPCS] Table 11-16: key types
KEY_TYPE_DES = 0x80  # DES, implicitly 3DES-ECB/CBC as the secure channel uses it ([GPCS] B.1)
KEY_TYPE_AES = 0x88
KCV_LENGTH = 3
FIRST_KEY_ID = 0x01  # ENC; MAC and DEK follow as 02 and 03 ([GPCS] 11.1.8)
MORE_KEYS = 0x80  # P2 b8: several keys in the command ([GPCS] Table 11-69)
KEY_TYPES = {"aes": KEY_TYPE_AES, "3des": KEY_TYPE_DES}

# [GPCS] Table 11-89: STORE DATA P1
STORE_LAST_BLOCK = 0x80
STORE_ENCRYPTED = 0x60  # b7-b6 = 11: the data is encrypted (under the DEK) as a whole
STORE_DGI = 0x08  # b5-b4 = 01
STORE_BER_TLV = 0x10  # b5-b4 = 10
STORE_FORMATS = {"dgi": STORE_DGI, "tlv": STORE_BER_TLV, "none": 0x00}


class PersoError(CardsuiteError):
    """Key or personalisation data that cannot be sent, or a card's answer that contradicts what was sent."""


@dataclass(frozen=True)
class PutKeyCommand:
    p1: int
    p2: int
    data: bytes
    kvn: int
    kcvs: tuple[bytes, ...]  # the host's own, in key order (ENC, MAC, DEK)


@dataclass(frozen=True)
class StoredKeys:
    """What the card says it stored: the key version and the key check values."""

    kvn: int
    kcvs: tuple[bytes, ...]


def _key_block(channel: SecureChannel, key: bytes, key_type: int) -> tuple[bytes, bytes]:
    aes = key_type == KEY_TYPE_AES
    if aes:
        # the card reads the key's length from the first byte; the padding is random so that it tells nothing
        padded = key + os.urandom(-len(key) % 16)
        encrypted = channel.encrypt_key_data(padded)
        body = bytes((len(encrypted) + 1, len(key))) + encrypted
    else:
        if len(key) != 16:
            raise PersoError(f"a 3DES key for a secure channel has 16 bytes (two-key 3DES), got {len(key)}")
        encrypted = channel.encrypt_key_data(key)
        body = bytes((len(encrypted),)) + encrypted
    check = kcv(key, aes)
    return bytes((key_type,)) + body + bytes((KCV_LENGTH,)) + check, check


def put_key_command(channel: SecureChannel, new: KeySet, key_type: str, replace: int | None = None) -> PutKeyCommand:
    """PUT KEY of a whole key set (ENC, MAC, DEK, key identifiers 1..3) as version ``new.kvn``: a new key set
    (P1 00), or in place of the version ``replace`` (P1 = that version)."""
    if key_type not in KEY_TYPES:
        raise PersoError(f"key type {key_type!r}: valid are {', '.join(KEY_TYPES)}")
    if not 0x01 <= new.kvn <= 0x7F:
        raise PersoError(f"the new key version must be 1..127 (0x01..0x7F), got {new.kvn}")
    if replace is not None and not 0x01 <= replace <= 0x7F:
        raise PersoError(f"the key version to replace must be 1..127, got {replace}")
    code = KEY_TYPES[key_type]
    if code == KEY_TYPE_AES and any(len(k) not in (16, 24, 32) for k in (new.enc, new.mac, new.dek)):
        raise PersoError("AES keys have 16, 24 or 32 bytes")
    blocks = [_key_block(channel, key, code) for key in (new.enc, new.mac, new.dek)]
    data = bytes((new.kvn,)) + b"".join(block for block, _ in blocks)
    return PutKeyCommand(replace or 0x00, FIRST_KEY_ID | MORE_KEYS, data, new.kvn, tuple(c for _, c in blocks))


def parse_put_key_response(data: bytes) -> StoredKeys:
    """[GPCS] 11.8.3.1: the key version number, then a key check value per key."""
    if not data or (len(data) - 1) % KCV_LENGTH:
        raise PersoError(f"PUT KEY answered {len(data)} bytes; expected the key version and 3-byte key check "
                         "values")
    rest = data[1:]
    return StoredKeys(data[0], tuple(rest[i : i + KCV_LENGTH] for i in range(0, len(rest), KCV_LENGTH)))


def check_stored(command: PutKeyCommand, stored: StoredKeys) -> None:
    """The card's key check values must be the host's: a mismatch means the card holds other keys than sent
    (a wrong DEK, a corrupted transfer), and authenticating with the new keys would fail."""
    if stored.kvn != command.kvn:
        raise PersoError(f"PUT KEY: the card stored key version 0x{stored.kvn:02X}, 0x{command.kvn:02X} was sent")
    if stored.kcvs and stored.kcvs != command.kcvs:
        ours = " ".join(k.hex().upper() for k in command.kcvs)
        theirs = " ".join(k.hex().upper() for k in stored.kcvs)
        raise PersoError(f"PUT KEY: the card's key check values {theirs} are not those of the keys sent ({ours}); "
                         "the card does not hold the keys meant: do not rely on them")


# ---------------------------------------------------------------- STORE DATA


def split_objects(data: bytes, fmt: str) -> list[bytes]:
    """The data objects of ``data``: DGIs (2-byte tag, length 1 byte or FF and 2 bytes; EMV CPS 2.3 Annex A)
    or BER-TLVs; the whole data as one piece without a format. Malformed data is refused before sending."""
    if fmt == "none":
        return [data]
    objects = []
    pos = 0
    try:
        if fmt == "dgi":
            while pos < len(data):
                if len(data) - pos < 3:
                    raise PersoError(f"DGI data ends inside a header at byte {pos}")
                length, head = data[pos + 2], 3
                if length == 0xFF:
                    length, head = int.from_bytes(data[pos + 3 : pos + 5], "big"), 5
                end = pos + head + length
                if end > len(data):
                    raise PersoError(f"DGI {data[pos:pos + 2].hex().upper()} at byte {pos} claims {length} bytes; "
                                     f"{len(data) - pos - head} follow")
                objects.append(data[pos:end])
                pos = end
            return objects
        objects = [encode_tlv(tag, value) for tag, value in parse_tlv(data)]  # two-byte tags, as parsed
    except (TlvError, IndexError) as exc:
        raise PersoError(f"not BER-TLV data: {exc}") from None
    return objects


def store_data_blocks(data: bytes, fmt: str, room: int) -> list[bytes]:
    """Command data of each STORE DATA: whole data objects packed up to ``room`` bytes; an object larger than
    a command is split across commands ([GPCS] 11.11.2: the card reassembles by block number)."""
    if fmt not in STORE_FORMATS:
        raise PersoError(f"STORE DATA format {fmt!r}: valid are {', '.join(STORE_FORMATS)}")
    if not data:
        raise PersoError("no data to store")
    blocks: list[bytes] = []
    current = b""
    for whole in split_objects(data, fmt):
        if current and len(current) + len(whole) > room:
            blocks.append(current)
            current = b""
        rest = whole
        while len(rest) > room:
            blocks.append(rest[:room])
            rest = rest[room:]
        current += rest
    if current:
        blocks.append(current)
    if len(blocks) > 256:
        raise PersoError(f"{len(blocks)} STORE DATA commands needed; the block number counts to 255")
    return blocks


def store_data_p1(fmt: str, last: bool, encrypted: bool = False) -> int:
    return (STORE_LAST_BLOCK if last else 0) | (STORE_ENCRYPTED if encrypted else 0) | STORE_FORMATS[fmt]
