"""`cardsuite deploy PROFILE`: take a card to what a card profile describes (profiles/cards/*.toml).

    cardsuite deploy profiles/cards/sim-suite.toml --card vpcd:0          load, install, personalise
    cardsuite deploy profiles/cards/sim-suite.toml --card vpcd:0 --plan   what it would do (reads the card only)

Keys come from the profile's key profile, read as `cardsuite gp --key-profile` reads it (the environment
variables or key files it names, or the public development keys when it says development = true); PINs from
the environment variables the application profile names.
Every card seen and every step go into the inventory (--db, env CARDSUITE_INVENTORY, default
sqlite:///<state>/inventory.db; postgresql://… for a fleet), the issuer's records into --wallet-db, both in
the state directory ($CARDSUITE_STATE, default ~/.local/state/cardsuite). A deploy that stopped part-way finishes when
run again. `--card sim` deploys onto a fresh in-process simulated card, gone when the command ends.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import nullcontext
from pathlib import Path

from cardsuite import settings
from cardsuite.cli.common import AddOptions, Connect, stream_sink
from cardsuite.cli.gp import default_guard_path
from cardsuite.deploy.deployer import Deployer, DeployOptions, Step, render_plan
from cardsuite.deploy.inventory import Inventory
from cardsuite.deploy.profiles import load_card_profile
from cardsuite.gp.guard import BrickGuard
from cardsuite.project import Project
from cardsuite.settings import ENV_DB, ENV_GUARD, ENV_INVENTORY
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.trace import Trace
from cardsuite.transport.base import Transport


class ProgressPrinter:
    """Load progress on one line of stderr, step outcomes on stdout."""

    def __init__(self, stream=None) -> None:
        self.stream = stream if stream is not None else sys.stderr  # looked up now: tests swap sys.stderr

    def progress(self, name: str, done: int, total: int) -> None:
        if done != total and not self.stream.isatty():
            return  # a log file gets the finished line only
        width = 30
        bar = "#" * (width * done // total)
        end = "\n" if done == total else ""
        print(f"\r  LOAD {name:20} [{bar:{width}}] {done}/{total} blocks", end=end, file=self.stream, flush=True)

    @staticmethod
    def step(step: Step, outcome: str) -> None:
        verb = "already there" if outcome == "skipped" else "done"
        print(f"{step.action:11} {step.name:20} {step.aid_hex:18} {verb}", flush=True)


def _transport(args: argparse.Namespace, connect: Connect, scp: int | None) -> Transport:
    if args.card != "sim":
        return connect(args)
    # "sim" elsewhere is a card with the applets already there; a deploy wants an empty card with a card manager
    project = Project.locate()
    transport = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig(f"scp0{scp or 3}"))
    transport.connect()
    if args.trace:  # connect() does this for the other cards; the same masked trace here
        transport.trace = Trace(sinks=[stream_sink()])
    print("deploying onto a fresh in-process simulated card (it is gone when this command ends)", file=sys.stderr)
    return transport


def cmd_deploy(args: argparse.Namespace, connect: Connect) -> int:
    profile = load_card_profile(args.profile)
    printer = ProgressPrinter()
    options = DeployOptions(plan_only=args.plan, retry_auth=args.retry_auth, wallet_db=args.wallet_db,
                            progress=printer.progress, after_step=None if args.plan else printer.step)
    project = Project.locate()
    guard = BrickGuard(args.guard_db or default_guard_path())
    if args.plan:  # reading: an inventory that is not there yet is not created, one that is must be ours
        url = args.db or settings.inventory_url()
        exists = not url.startswith("sqlite:///") or Path(url[len("sqlite:///"):]).is_file()
        with (Inventory(url, read_only=True) if exists else nullcontext()) as inventory, \
                _transport(args, connect, profile.keys.scp) as transport:
            result = Deployer(project, profile, transport, inventory, guard, options=options).run()
        print(render_plan(result.plan).rstrip("\n"))
        return 0
    with Inventory(args.db) as inventory, _transport(args, connect, profile.keys.scp) as transport:
        result = Deployer(project, profile, transport, inventory, guard, options=options).run()
    skipped = len(result.plan.steps) - len(result.performed)
    print(f"deployed {profile.name} onto {result.plan.card}: {len(result.performed)} steps done, "
          f"{skipped} already there; recorded in {inventory.url}")
    return 0


def register(subparsers: argparse._SubParsersAction, add_card_options: AddOptions, connect: Connect) -> None:
    deploy = subparsers.add_parser("deploy", help="load, install and personalise a card from a card profile",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   allow_abbrev=False)
    deploy.add_argument("profile", type=Path, help="card profile (TOML), e.g. profiles/cards/sim-suite.toml")
    add_card_options(deploy)
    deploy.add_argument("--plan", action="store_true",
                        help="show what the deploy would do; reads the card's identity and contents, changes nothing")
    deploy.add_argument("--db", default=os.environ.get(ENV_INVENTORY),
                        help=f"inventory database URL: sqlite:///path or postgresql://… [env {ENV_INVENTORY}, "
                        f"default sqlite:///<state>/{settings.INVENTORY_FILE}]")
    deploy.add_argument("--wallet-db", type=Path, default=os.environ.get(ENV_DB),
                        help=f"the issuer's database for wallet personalisation [env {ENV_DB}, "
                        f"default <state>/{settings.WALLET_FILE}]")
    deploy.add_argument("--guard-db", type=Path, default=os.environ.get(ENV_GUARD),
                        help=f"brick guard database [env {ENV_GUARD}, default <state>/{settings.GUARD_FILE}]")
    deploy.add_argument("--retry-auth", action="store_true",
                        help="authenticate even though these keys already failed on this card (the brick guard)")
    deploy.set_defaults(handler=lambda args: cmd_deploy(args, connect))
