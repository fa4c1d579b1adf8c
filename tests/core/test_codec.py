"""The one hex parser (cardsuite.codec): which texts it accepts and refuses, what its errors say, and that no
other module of the package decodes hex on its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from cardsuite.codec import HexError, parse_aid, parse_hex
from cardsuite.errors import ConfigurationError

PACKAGE = Path(__file__).resolve().parents[2] / "host" / "cardsuite"

ACCEPTED = [
    ("", b""),
    ("A000000151", bytes.fromhex("A000000151")),
    ("a000000151", bytes.fromhex("A000000151")),
    ("A0 00 00 01 51", bytes.fromhex("A000000151")),
    ("A0:00:00:01:51", bytes.fromhex("A000000151")),
    ("A0: 00 :00:0151", bytes.fromhex("A000000151")),
    ("  A000 0001\t51\n", bytes.fromhex("A000000151")),
    ("A 0", b"\xa0"),  # separators may fall inside a byte: they are dropped before decoding
    ("::", b""),
]
REFUSED = ["zz", "A", "A00", "0xA0", "A0-00", "A0,00", "A0.00", "é0", "A0\u00a000", "١٢"]


@pytest.mark.parametrize(("text", "value"), ACCEPTED)
def test_accepted(text: str, value: bytes) -> None:
    assert parse_hex(text, "--data") == value


@pytest.mark.parametrize("text", REFUSED)
def test_refused_naming_what_and_the_text(text: str) -> None:
    with pytest.raises(HexError) as refused:
        parse_hex(text, "--data")
    assert str(refused.value) == f"--data {text!r} is not hex"


def test_the_error_is_a_configuration_error_and_a_value_error() -> None:
    with pytest.raises(ConfigurationError):
        parse_hex("zz", "x")
    with pytest.raises(ValueError):
        parse_hex("zz", "x")


@pytest.mark.parametrize(("bounds", "text", "message"), [
    ({"length": 8}, "00" * 7, "must be 8 bytes, got 7"),
    ({"length": (16, 24, 32)}, "00" * 20, "must be 16, 24 or 32 bytes, got 20"),
    ({"min_length": 1}, "", "must be at least 1 bytes, got 0"),
    ({"max_length": 2}, "000000", "must be at most 2 bytes, got 3"),
    ({"min_length": 2, "max_length": 3}, "0000", None),
    ({"min_length": 2, "max_length": 3}, "00" * 4, "must be 2 to 3 bytes, got 4"),
    ({"length": (16, 24, 32)}, "00" * 24, None),
])
def test_lengths(bounds: dict, text: str, message: str | None) -> None:
    if message is None:
        assert parse_hex(text, "x", **bounds) == bytes.fromhex(text)
        return
    with pytest.raises(HexError, match=message):
        parse_hex(text, "x", **bounds)


KEY = "404142434445464748494A4B4C4D4E4F"


@pytest.mark.parametrize(("text", "bounds", "message"), [
    (KEY[:-1], {}, "$KEY is not hex (the value is not shown)"),
    (KEY + "zz", {}, "$KEY is not hex (the value is not shown)"),
    (KEY[:-2], {"length": (16, 24, 32)}, "$KEY must be 16, 24 or 32 bytes, got 15"),
])
def test_a_secret_is_never_repeated(text: str, bounds: dict, message: str) -> None:
    with pytest.raises(HexError) as refused:
        parse_hex(text, "$KEY", secret=True, **bounds)
    assert str(refused.value) == message
    assert "4041" not in str(refused.value) and "4A4B" not in str(refused.value)


@pytest.mark.parametrize("text", ["A000000151", "A0:00:00:01:51", "A0 00 00 01 51 00 00 00", "A0" * 16])
def test_aids_of_5_to_16_bytes(text: str) -> None:
    assert parse_aid(text, "--aid") == parse_hex(text, "--aid")


@pytest.mark.parametrize(("text", "message"), [
    ("A0000001", "--aid 'A0000001' has 4 bytes; an AID has 5 to 16 bytes"),
    ("A0" * 17, f"--aid '{'A0' * 17}' has 17 bytes; an AID has 5 to 16 bytes"),
    ("", "--aid '' has 0 bytes; an AID has 5 to 16 bytes"),
    ("A0:00:00:01:5", "--aid 'A0:00:00:01:5' is not hex"),
])
def test_aids_refused(text: str, message: str) -> None:
    with pytest.raises(HexError) as refused:
        parse_aid(text, "--aid")
    assert str(refused.value) == message


def _decodes_hex_itself(node: ast.AST) -> bool:
    """A call of ``bytes.fromhex`` (or ``binascii.unhexlify`` / ``a2b_hex``) on anything but a string literal."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    names = {"fromhex", "unhexlify", "a2b_hex"}
    if node.func.attr not in names:
        return False
    return not (len(node.args) == 1 and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))


def test_no_other_module_decodes_hex_input() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "codec.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if _decodes_hex_itself(node):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, "decode hex with cardsuite.codec.parse_hex / parse_aid:\n" + "\n".join(offenders)


def test_the_rule_sees_a_decoder_of_input() -> None:
    # the check above would pass vacuously if it never matched: it flags a call on a variable, not a literal
    flagged = [_decodes_hex_itself(ast.parse(code).body[0].value) for code in
               ("bytes.fromhex(text)", "binascii.unhexlify(t)", "bytes.fromhex('A0' + x)", "bytes.fromhex('A000')")]
    assert flagged == [True, True, True, False]
