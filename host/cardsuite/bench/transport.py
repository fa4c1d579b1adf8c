"""Transport benchmark: the same echo command over the in-process simulator, over vpcd through our
host layer, and raw pyscard on the same vpcd reader, so our layer's overhead is a ratio from one run."""

from __future__ import annotations

import json
import os
import platform

from cardsuite.apdu import CommandAPDU
from cardsuite.bench.stats import measure_interleaved
from cardsuite.project import Project
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.sim.vpcd import VpcdSimulator
from cardsuite.tooling.manifest import load_manifest

SIZES = (32, 250)


def _echo(size: int) -> CommandAPDU:
    return CommandAPDU(0x80, 0x01, 0, 0, os.urandom(size), le=size)


def run_inprocess_ratio(project: Project, count: int = 2000) -> dict:
    """SimulatorTransport.transmit (CommandAPDU in, ResponseAPDU out) against the bridge's own transmit on the
    same card, interleaved in this process: the host layer's cost as a ratio that load elsewhere cannot skew.
    A third case, the bridge's transmitShared called bare as the transport calls it, shows what of the round
    trip is the host layer's own Python (the ratio over it) and what the JPype boundary saves."""
    results: dict[str, dict] = {}
    echo_aid = load_manifest(project.manifest).applet_aid("echo")
    with SimulatorTransport(project) as card:
        card.select(echo_aid)
        bridge = card._require()  # the bridge's own SimulatedCard, called without our layer
        shared, view, send = card._shared, card._view, bridge.transmitShared
        for size in SIZES:
            command = _echo(size)
            raw = command.to_bytes()

            def bare_shared(r: bytes = raw) -> bytes:
                view[:len(r)] = r
                return view[:send(shared, len(r))].tobytes()

            results.update(measure_interleaved({
                f"inprocess_host_layer_{size}": lambda c=command: card.transmit(c),
                # the least a Python caller does: bytes in, bytes out (JPype converts both ways)
                f"inprocess_bridge_transmit_{size}": lambda r=raw: bytes(bridge.transmit(r)),
                f"inprocess_bridge_shared_{size}": bare_shared,
            }, count))

    def over(base: str) -> dict[str, float]:
        return {str(size): round(results[f"inprocess_host_layer_{size}"]["median_ms"]
                                 / results[f"inprocess_{base}_{size}"]["median_ms"], 3) for size in SIZES}

    return {"results": results, "ratio": over("bridge_transmit"), "ratio_over_shared": over("bridge_shared")}


def run_transport_bench(project: Project, count: int = 2000) -> dict:
    echo_aid = load_manifest(project.manifest).applet_aid("echo")
    inprocess = run_inprocess_ratio(project, count)
    results: dict[str, dict] = dict(inprocess["results"])
    inprocess_ratio = inprocess["ratio"]
    inprocess_over_shared = inprocess["ratio_over_shared"]
    with VpcdSimulator(project, slot=0) as simulator, simulator.transport() as card:
        card.select(echo_aid)
        raw_connection = card._require()  # the same pyscard connection, used without our layer
        for size in SIZES:
            command = _echo(size)
            raw = list(command.to_bytes())
            results.update(measure_interleaved({
                f"vpcd_host_layer_{size}": lambda c=command: card.send(c),
                f"vpcd_raw_pyscard_{size}": lambda r=raw: raw_connection.transmit(r),
            }, count))
    overhead = {
        str(size): round(results[f"vpcd_host_layer_{size}"]["median_ms"]
                         / results[f"vpcd_raw_pyscard_{size}"]["median_ms"] - 1, 4)
        for size in SIZES
    }
    report = {
        "what": "echo APDU round trips (case 4, N bytes out and back)",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.platform()},
        "results": results,
        "host_layer_overhead_vs_raw_pyscard": overhead,
        # SimulatorTransport.transmit (CommandAPDU in, ResponseAPDU out) over the bridge's own transmit
        "inprocess_host_layer_ratio_vs_bridge": inprocess_ratio,
        # the same over the bridge's transmitShared called bare: the host layer's own Python
        "inprocess_host_layer_ratio_vs_bridge_shared": inprocess_over_shared,
        "targets": {"host_layer_overhead_max": 0.10, "vpcd_median_ms_max": 0.3, "inprocess_ratio_max": 1.2},
    }
    project.bench.mkdir(parents=True, exist_ok=True)
    out = project.bench / "transport.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'case':34} {'rt/s':>10} {'median ms':>10} {'p99 ms':>10}")
    for name, figures in results.items():
        print(f"{name:34} {figures['per_second']:>10} {figures['median_ms']:>10} {figures['p99_ms']:>10}")
    for size, ratio in overhead.items():
        print(f"host layer overhead over raw pyscard, {size} bytes: {ratio * 100:+.1f}%")
    for size, ratio in inprocess_ratio.items():
        print(f"in-process: SimulatorTransport.transmit over the bridge's own transmit, {size} bytes: {ratio:.2f}x "
              f"(median {results[f'inprocess_host_layer_{size}']['median_ms']} ms against "
              f"{results[f'inprocess_bridge_transmit_{size}']['median_ms']} ms; "
              f"{inprocess_over_shared[size]:.2f}x over its bare transmitShared)")
    print(f"written {out.relative_to(project.root)}")
    return report
