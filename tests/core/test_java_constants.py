"""Card and host agree: the Java constants (WalletConstants, EcashConstants, the wallet's command policy, the
card manager's INS and SW) and docs/wallet-apdu.md's command tables against the Python definitions. The Java
side is read as text (a regex on `static final` and interface constants, no JVM); the Python side is named in
PYTHON below by module and attribute strings, so a Python rename is a one-line change there."""

from __future__ import annotations

import importlib
import re
from enum import Enum
from pathlib import Path

import pytest
from support import ROOT

WALLET_SOURCES = ROOT / "applets" / "wallet"
GP_SOURCES = ROOT / "host" / "simbridge" / "src" / "cardsuite" / "simbridge" / "gp"
APDU_DOC = ROOT / "docs" / "wallet-apdu.md"

# The Python definitions, by name: module, then an attribute (a module constant, or an enum whose members are
# compared as PREFIX + member name). Rename a Python class or constant here, nowhere else.
PYTHON = {
    "apdu": "cardsuite.apdu",
    "wallet": "cardsuite.wallet.card",
    "wallet_sm": "cardsuite.wallet.sm",
    "wallet_issuer": "cardsuite.wallet.issuer",
    "wallet_merchant": "cardsuite.wallet.merchant",
    "ecash": "cardsuite.ecash.card",
    "gp": "cardsuite.gp.client",
    "scp": "cardsuite.gp.scp",
}
WALLET_STATES = ("wallet", "WalletLifeCycle")  # members INSTALLED ... TERMINATED = Java STATE_*
WALLET_LOG_TYPES = ("wallet", "LogType")  # members PAYMENT, CREDIT = Java LOG_TYPE_*

# Java name -> (Python module key, Python name) where the names differ or the constant lives elsewhere
WALLET_RENAMES = {
    "CLA_SECURE": ("wallet_sm", "CLA_SECURE"),
    "KEY_VERSION_TRANSPORT": ("wallet_sm", "KEY_VERSION_TRANSPORT"),
    "KEY_VERSION_ISSUER": ("wallet_sm", "KEY_VERSION_ISSUER"),
    "SW_AUTHENTICATION_FAILED": ("wallet_issuer", "SW_AUTH_FAILED"),
    "SW_AUTH_BLOCKED": ("apdu", "SW_VERIFICATION_BLOCKED"),
    "SW_REFERENCE_NOT_FOUND": ("wallet_issuer", "SW_KEY_VERSION"),  # 6A88: INITIALIZE UPDATE's unknown version
}
GP_RENAMES = {  # CardManager / Sw -> the GP client and SCP modules
    "INS_INITIALIZE_UPDATE": ("scp", "INS_INITIALIZE_UPDATE"),
    "INS_EXTERNAL_AUTHENTICATE": ("scp", "INS_EXTERNAL_AUTHENTICATE"),
    "INS_GET_DATA": ("gp", "INS_GET_DATA"),
    "INS_GET_STATUS": ("gp", "INS_GET_STATUS"),
    "INS_INSTALL": ("gp", "INS_INSTALL"),
    "INS_LOAD": ("gp", "INS_LOAD"),
    "INS_DELETE": ("gp", "INS_DELETE"),
    "INS_SET_STATUS": ("gp", "INS_SET_STATUS"),
    "INS_PUT_KEY": ("gp", "INS_PUT_KEY"),
    "INS_STORE_DATA": ("gp", "INS_STORE_DATA"),
    "MORE_DATA": ("gp", "SW_MORE_DATA"),
    "CARD_LOCKED_WARNING": ("gp", "SW_CARD_LOCKED"),
}
# Java constants with no host counterpart on purpose (the host never sends or decodes them)
# the host's SELECT is ISO's, from cardsuite.apdu; STORE DATA has no host constant until the client sends it
GP_CARD_ONLY = {"INS_SELECT"}

# docs/wallet-apdu.md command names that are not INS_ + the name in capitals
DOC_NAMES = {"LOAD RANGE": "INS_ECASH_LOAD_RANGE"}
DOC_NOT_WALLET = {"SELECT"}  # answered by the Java Card runtime, not WalletApplet

_CONSTANT = re.compile(
    r"^\s*(?:(?:public|private|protected|static|final)\s+)*(?:byte|short|int)\s+([A-Z][A-Z0-9_]*)\s*=\s*"
    r"(?:\((?:byte|short)\)\s*)?(0x[0-9A-Fa-f]+|\d+)\s*;", re.MULTILINE)


def java_constants(*paths: Path) -> dict[str, int]:
    """NAME -> value for every constant with a literal value (derived ones like STATES_ALL are left out)."""
    found: dict[str, int] = {}
    for path in paths:
        for name, value in _CONSTANT.findall(path.read_text()):
            assert name not in found, f"{name} defined twice in {paths}"
            found[name] = int(value, 0)
    return found


def python_value(module_key: str, name: str) -> int:
    module = importlib.import_module(PYTHON[module_key])
    assert hasattr(module, name), f"{PYTHON[module_key]} has no {name}"
    return int(getattr(module, name))


def python_enum(ref: tuple[str, str], prefix: str) -> dict[str, int]:
    enum = getattr(importlib.import_module(PYTHON[ref[0]]), ref[1])
    assert issubclass(enum, Enum)
    return {prefix + member.name: int(member.value) for member in enum}


def _compare(java: dict[str, int], python: dict[str, int]) -> None:
    mismatched = {name: (f"{java[name]:#x}", f"{python[name]:#x}") for name in java.keys() & python.keys()
                  if java[name] != python[name]}
    assert not mismatched, f"Java vs Python: {mismatched}"


def _module_ints(module_key: str) -> dict[str, int]:
    module = importlib.import_module(PYTHON[module_key])
    return {name: value for name, value in vars(module).items()
            if name.isupper() and isinstance(value, int) and not isinstance(value, bool)}


@pytest.fixture(scope="module")
def wallet_java() -> dict[str, int]:
    return java_constants(WALLET_SOURCES / "WalletConstants.java", WALLET_SOURCES / "EcashConstants.java")


def test_the_java_reader_sees_the_constants(wallet_java: dict[str, int]) -> None:
    """The regex reads casts, hex and decimal and skips derived values (it cannot pass by reading nothing)."""
    assert wallet_java["CLA_PROPRIETARY"] == 0x80 and wallet_java["INS_ECASH_PAY"] == 0x56
    assert wallet_java["PERSO_HOLDER"] == 97 and wallet_java["LOG_FID"] == 0xEF01
    assert "STATES_ALL" not in wallet_java and "SLOT_UNIT" not in wallet_java
    assert len([n for n in wallet_java if n.startswith("INS_")]) == 20


def test_every_wallet_instruction_is_defined_alike_on_the_host(wallet_java: dict[str, int]) -> None:
    python = _module_ints("wallet") | _module_ints("ecash")
    instructions = {n: v for n, v in wallet_java.items() if n.startswith(("INS_", "CLA_"))}
    missing = instructions.keys() - python.keys() - WALLET_RENAMES.keys()
    assert not missing, f"the host lacks {sorted(missing)}"
    _compare(instructions, python)


def test_wallet_values_agree(wallet_java: dict[str, int]) -> None:
    """Every constant both sides define under one name, and the renamed ones."""
    python = _module_ints("wallet") | _module_ints("ecash") | _module_ints("wallet_sm")
    python |= {java: python_value(*where) for java, where in WALLET_RENAMES.items()}
    python |= python_enum(WALLET_STATES, "STATE_") | python_enum(WALLET_LOG_TYPES, "LOG_TYPE_")
    shared = wallet_java.keys() & python.keys()
    assert {n for n in wallet_java if n.startswith("STATE_")} <= shared  # the whole life cycle
    assert set(WALLET_RENAMES) <= shared and len(shared) >= 40
    _compare(wallet_java, python)


def test_the_card_manager_agrees_with_the_gp_client() -> None:
    java = java_constants(GP_SOURCES / "CardManager.java", GP_SOURCES / "Sw.java")
    instructions = {n for n in java_constants(GP_SOURCES / "CardManager.java") if n.startswith("INS_")} - GP_CARD_ONLY
    assert len(instructions) == 10
    missing = instructions - GP_RENAMES.keys()
    assert not missing, f"no host counterpart named for {sorted(missing)}"
    python = {name: python_value(*where) for name, where in GP_RENAMES.items()}
    _compare(java, python)
    life_cycle: dict[int, str] = importlib.import_module(PYTHON["gp"]).CARD_LIFE_CYCLE
    assert {java[name]: name for name in life_cycle.values()} == life_cycle  # OP_READY ... TERMINATED
    assert python_value("scp", "CLA_GP") == python_value("gp", "CLA_GP") == 0x80


# ---------------------------------------------------------------- docs/wallet-apdu.md and the command policy


def _doc_commands() -> dict[str, dict[str, str]]:
    """Java INS name -> the row of a command table (columns by header: CLA, INS, security, ...)."""
    rows: dict[str, dict[str, str]] = {}
    header: list[str] | None = None
    for line in APDU_DOC.read_text().splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip().strip("`").strip() for c in line.strip("|").split("|")]
        if header is None:
            header = cells
        elif not set(cells[0]) <= {"-", " "} and "INS" in header:
            row = dict(zip(header, cells, strict=True))
            if row["command"] not in DOC_NOT_WALLET:
                rows[DOC_NAMES.get(row["command"], "INS_" + row["command"].replace(" ", "_"))] = row
    return rows


_POLICY_ROW = re.compile(r"^\s*(INS_[A-Z_]+),\s*(CLA_[A-Z]+),\s*([A-Z_| ]+?),\s*(NEEDS_PIN|0),", re.MULTILINE)


def _policy() -> dict[str, tuple[str, str, bool]]:
    """WalletApplet.POLICY as text: INS name -> (class name, states expression, needs the PIN)."""
    text = (WALLET_SOURCES / "WalletApplet.java").read_text()
    return {ins: (cla, states.strip(), pin == "NEEDS_PIN") for ins, cla, states, pin in _POLICY_ROW.findall(text)}


def test_the_doc_lists_every_instruction_with_its_code(wallet_java: dict[str, int]) -> None:
    doc = _doc_commands()
    instructions = {n: v for n, v in wallet_java.items() if n.startswith("INS_")}
    assert doc.keys() == instructions.keys()
    assert {name: int(row["INS"], 16) for name, row in doc.items()} == instructions


def test_the_doc_and_the_policy_agree_on_class_and_pin(wallet_java: dict[str, int]) -> None:
    doc, policy = _doc_commands(), _policy()
    assert policy.keys() == doc.keys()
    for name, (cla, _, needs_pin) in policy.items():
        assert int(doc[name]["CLA"], 16) == wallet_java[cla], name
        assert doc[name]["security"].startswith("PIN") == needs_pin, name
        # and the host sends it with that class
        assert (cla == "CLA_SECURE") == (doc[name]["security"] == "session"), name


def _state_masks(wallet_java: dict[str, int]) -> dict[str, int]:
    """STATE_* and the derived STATES_* masks of WalletConstants (`(byte) (A | B | ...)`)."""
    masks = {n: v for n, v in wallet_java.items() if n.startswith("STATE_")}
    text = (WALLET_SOURCES / "WalletConstants.java").read_text()
    for name, expression in re.findall(r"byte\s+(STATES_[A-Z]+)\s*=\s*\(byte\)\s*\(([A-Z_| ]+)\);", text):
        masks[name] = _or(masks, expression)
    return masks


def _or(masks: dict[str, int], expression: str) -> int:
    value = 0
    for name in expression.split("|"):
        value |= masks[name.strip()]
    return value


def _doc_states(wallet_java: dict[str, int]) -> dict[str, int]:
    """Java INS name -> allowed states from the doc: the e-cash table's column and the wallet's states table."""
    masks = _state_masks(wallet_java)
    def parse(text: str) -> int:
        if text == "all":
            return masks["STATES_ALL"]
        if text == "all but TERMINATED":
            return masks["STATES_ALL"] & ~masks["STATE_TERMINATED"]
        return _or(masks, "|".join("STATE_" + state.strip() for state in text.split(",")))
    states = {name: parse(row["states"]) for name, row in _doc_commands().items() if "states" in row}
    lines = APDU_DOC.read_text().split("| command | states |", 1)[1].split("\n\n", 1)[0].splitlines()
    for line in lines[2:]:
        commands, allowed = (cell.strip() for cell in line.strip("|").split("|"))
        for command in commands.split(","):
            states[DOC_NAMES.get(command.strip(), "INS_" + command.strip().replace(" ", "_"))] = parse(allowed)
    return states


def test_the_doc_and_the_policy_agree_on_states(wallet_java: dict[str, int]) -> None:
    masks = _state_masks(wallet_java)
    assert masks["STATES_HOLDER"] == 0x06 and masks["STATES_ALL"] == 0x1F  # the reader works
    policy = {name: _or(masks, states) for name, (_, states, _) in _policy().items()}
    assert _doc_states(wallet_java) == policy
