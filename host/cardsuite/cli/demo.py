"""The main job of the README's first command: the echo applet answering on the simulated card,
in-process and through pcscd/vpcd like a card in a reader; then the ISO applet's file tree, the wallet's
payment flow and the e-cash story, each on a fresh simulated card, through the same commands users run:
``python -m cardsuite`` processes with the card and the database on their command line and the PIN in their
own environment (never argv); this process's environment is left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from cardsuite import settings
from cardsuite.apdu import CommandAPDU
from cardsuite.errors import CardsuiteError
from cardsuite.project import Project
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


DEMO_PIN = "2580"  # the demonstration card's PIN, public like the development keys the demo uses


def cli_steps(database: Path) -> list[tuple[str, list[str]]]:
    """What the demo runs after the echo applet: (title, cardsuite arguments), each on a fresh simulated card."""
    db = ["--db", str(database)]
    return [("the ISO applet's file tree", ["fs", "tree", "--card", "sim"]),
            ("wallet: personalise, enrol, credit, pay, log", ["wallet", "demo", "--card", "sim", *db, "--dev-keys"]),
            ("e-cash: register, buy, pay two vendors, deposit, catch cheats", ["ecash", "story", "--card", "sim", *db])]


def run_cli(project: Project, argv: Sequence[str], env: Mapping[str, str]) -> None:
    """`cardsuite ARGV` as its own process (output straight to ours), ``env`` added to its environment."""
    done = subprocess.run([sys.executable, "-m", "cardsuite", *argv], cwd=project.root, env={**os.environ, **env},
                          check=False)
    if done.returncode != 0:
        raise CardsuiteError(f"`cardsuite {' '.join(argv)}` failed (exit {done.returncode})")


def run_demo(project: Project) -> None:
    echo_aid = load_manifest(project.manifest).applet_aid("echo")
    with SimulatorTransport(project) as card:
        print(f"in-process simulator (ATR {card.atr.hex().upper()}): {exercise_echo(card, echo_aid)}")
    with VpcdSimulator(project, slot=0) as simulator, simulator.transport() as card:
        print(f"reader {card.name!r} through pcscd/vpcd: {exercise_echo(card, echo_aid)}")
    with tempfile.TemporaryDirectory() as scratch:
        # a throwaway database and the public development PIN and keys: this is a demonstration card
        for title, argv in cli_steps(Path(scratch) / "demo.db"):
            print(f"\n== {title}: cardsuite {' '.join(argv)}", flush=True)
            run_cli(project, argv, {settings.ENV_PIN: DEMO_PIN})
    print("demo: done")
