"""The main job of the README's first command: the echo applet answering on the simulated card,
in-process and through pcscd/vpcd like a card in a reader; then the ISO applet's file tree, the wallet's
payment flow and the e-cash story, each on a fresh simulated card, through the same commands users run."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from unittest import mock

from cardsuite.apdu import CommandAPDU
from cardsuite.errors import CardsuiteError
from cardsuite.project import Project
from cardsuite.settings import ENV_CARD, ENV_DB, ENV_PIN
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.sim.vpcd import VpcdSimulator
from cardsuite.tooling.manifest import load_manifest
from cardsuite.transport.base import Transport


def exercise_echo(transport: Transport, echo_aid: bytes) -> str:
    transport.select(echo_aid)
    payload = os.urandom(32)
    echoed = transport.send(CommandAPDU(0x80, 0x01, 0, 0, payload, le=256)).data
    if echoed != payload:
        raise AssertionError(f"echo returned {echoed.hex()} for {payload.hex()}")
    filled = transport.send(CommandAPDU(0x80, 0x02, 0, 0, le=16)).data
    if filled != bytes(range(16)):
        raise AssertionError(f"fill returned {filled.hex()}")
    started = time.perf_counter()
    for _ in range(100):
        transport.send(CommandAPDU(0x80, 0x01, 0, 0, payload, le=256))
    return f"echo of 32 bytes ok; {(time.perf_counter() - started) * 10:.3f} ms per round trip"


def run_demo(project: Project) -> None:
    echo_aid = load_manifest(project.manifest).applet_aid("echo")
    with SimulatorTransport(project) as card:
        print(f"in-process simulator (ATR {card.atr.hex().upper()}): {exercise_echo(card, echo_aid)}")
    with VpcdSimulator(project, slot=0) as simulator, simulator.transport() as card:
        print(f"reader {card.name!r} through pcscd/vpcd: {exercise_echo(card, echo_aid)}")
    from cardsuite.cli.main import main

    with tempfile.TemporaryDirectory() as scratch:
        # a throwaway database and the public development PIN and keys: this is a demonstration card
        env = {ENV_DB: str(Path(scratch) / "demo.db"), ENV_PIN: "2580", ENV_CARD: "sim"}
        with mock.patch.dict(os.environ, env):
            for title, argv in (("the ISO applet's file tree", ["fs", "tree"]),
                                ("wallet: personalise, enrol, credit, pay, log", ["wallet", "demo", "--dev-keys"]),
                                ("e-cash: register, buy, pay two vendors, deposit, catch cheats", ["ecash", "story"])):
                print(f"\n== {title}: cardsuite {' '.join(argv)}")
                if main(argv) != 0:
                    raise CardsuiteError(f"`cardsuite {' '.join(argv)}` failed")
    print("demo: done")
