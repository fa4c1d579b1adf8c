"""Loading figures (issue 6): time to load and install each package of the suite onto an empty simulated
card through our GlobalPlatform client, in-process and over vpcd, and for the whole profile deploy
(profiles/cards/sim-suite.toml, wallet personalisation included). Written to build/bench/load.json."""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path

from cardsuite.bench.stats import ms
from cardsuite.deploy.deployer import Deployer, DeployOptions, Requirements
from cardsuite.deploy.inventory import Inventory
from cardsuite.deploy.profiles import load_card_profile
from cardsuite.gp.client import GlobalPlatform
from cardsuite.gp.keys import development_keys
from cardsuite.project import Project
from cardsuite.settings import ENV_PIN, ENV_PUK
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots
from cardsuite.transport.base import Transport

PROFILE = Path("profiles") / "cards" / "sim-suite.toml"
BENCH_ENV = {ENV_PIN: "1234", ENV_PUK: "12345678"}  # a simulated card's demo PIN


def _per_package(project: Project, transport: Transport) -> list[dict[str, object]]:
    """Each package of the profile in load order: LOAD (blocks) then INSTALL of its instances."""
    needs = Requirements(project, load_card_profile(project.root / PROFILE), BENCH_ENV)
    gp = GlobalPlatform(transport)
    gp.open_secure_channel(development_keys().keys)
    rows = []
    for package in needs.packages:
        cap = package.read()
        start = time.perf_counter()
        blocks = gp.load_cap(cap)
        loaded = time.perf_counter()
        instances = [i for i in needs.instances if i.package.aid == package.aid]
        for inst in instances:
            gp.install_for_install(package.aid, inst.applet, inst.instance, params=inst.params)
        done = time.perf_counter()
        rows.append({"package": package.name, "load_bytes": len(cap.load_file()), "blocks": blocks,
                     "load_ms": ms(loaded - start, 2), "instances": len(instances),
                     "install_ms": ms(done - loaded, 2),
                     "bytes_per_second": round(len(cap.load_file()) / (loaded - start))})
    return rows


def _whole_profile(project: Project, transport: Transport, work: Path) -> dict[str, object]:
    profile = load_card_profile(project.root / PROFILE)
    with Inventory(f"sqlite:///{work / 'inventory.db'}", station="bench") as inventory:
        start = time.perf_counter()
        result = Deployer(project, profile, transport, inventory, None,
                          options=DeployOptions(wallet_db=work / "wallet.db", env=BENCH_ENV)).run()
        first = time.perf_counter()
        again = Deployer(project, profile, transport, inventory, None,
                         options=DeployOptions(wallet_db=work / "wallet.db", env=BENCH_ENV)).run()
        second = time.perf_counter()
    return {"steps": len(result.performed), "deploy_ms": ms(first - start, 1),
            "rerun_steps": len(again.performed), "rerun_ms": ms(second - first, 1)}


def _in_process(project: Project) -> SimulatorTransport:
    transport = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig("scp03"))
    transport.connect()
    return transport


def run_load_bench(project: Project, out: Path | None = None) -> Path:
    """Writes build/bench/load.json (or ``out``) and returns its path. The vpcd part is left out, with the
    reason recorded, when no vpcd slot is free."""
    figures: dict[str, object] = {"profile": str(PROFILE), "protocol": "SCP03, C-MAC",
                                  "python": platform.python_version()}
    with tempfile.TemporaryDirectory(prefix="cardsuite-load-") as tmp:
        work = Path(tmp)
        card = _in_process(project)
        figures["in_process"] = {"packages": _per_package(project, card)}
        card.disconnect()
        card = _in_process(project)
        figures["in_process"]["profile"] = _whole_profile(project, card, work / "in")  # type: ignore[index]
        card.disconnect()
        ensure_pcscd()
        slots = free_slots()
        if not slots:
            figures["vpcd"] = {"skipped": "every vpcd slot holds a card"}
        else:
            vpcd: dict[str, object] = {}
            for part in ("packages", "profile"):
                with VpcdSimulator(project, slot=slots[0], applets=[], card_manager=CardManagerConfig("scp03")) as sim:
                    transport = sim.transport()
                    transport.connect()
                    try:
                        (work / part).mkdir()
                        vpcd[part] = (_per_package(project, transport) if part == "packages"
                                      else _whole_profile(project, transport, work / part))
                    finally:
                        transport.disconnect()
            figures["vpcd"] = vpcd
    target = out or project.bench / "load.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"load figures written to {target}")
    return target
