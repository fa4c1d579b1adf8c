"""BER-TLV as ISO/IEC 7816-4 uses it (one- and two-byte tags, definite lengths up to 65535)."""

from __future__ import annotations

from cardsuite.errors import CardsuiteError


class TlvError(CardsuiteError):
    """Malformed BER-TLV from the card."""


def parse_tlv(data: bytes) -> list[tuple[int, bytes]]:
    """Parses a flat sequence of TLV objects; constructed values stay raw bytes."""
    items: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        if data[i] in (0x00, 0xFF):  # padding between objects
            i += 1
            continue
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            if i >= len(data):
                raise TlvError("TLV ends inside a tag")
            tag = (tag << 8) | data[i]
            i += 1
        if i >= len(data):
            raise TlvError(f"TLV ends before the length of tag {tag:X}")
        length = data[i]
        i += 1
        if length in (0x81, 0x82):
            count = length - 0x80
            if i + count > len(data):
                raise TlvError(f"TLV ends inside the length of tag {tag:X}")
            length = int.from_bytes(data[i : i + count], "big")
            i += count
        elif length > 0x82:
            raise TlvError(f"unsupported TLV length byte {length:02X}")
        if i + length > len(data):
            raise TlvError(f"tag {tag:X} claims {length} bytes, {len(data) - i} remain")
        items.append((tag, data[i : i + length]))
        i += length
    return items


def encode_tlv(tag: int, value: bytes) -> bytes:
    tag_bytes = tag.to_bytes(2 if tag > 0xFF else 1, "big")
    if len(value) < 0x80:
        length = bytes((len(value),))
    elif len(value) <= 0xFF:
        length = bytes((0x81, len(value)))
    else:
        length = bytes((0x82,)) + len(value).to_bytes(2, "big")
    return tag_bytes + length + value
