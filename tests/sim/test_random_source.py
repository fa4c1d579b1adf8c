"""The bridge replaces jCardSim's deterministic SecureRandomNullProvider (key pairs, ECDSA nonces) by shipping a
class of the same name, which the JVM loads only with the bridge's classes first on the classpath. Every
SimulatedCard checks that at construction (RandomSource.check): the other order fails at start, loudly."""

from __future__ import annotations

import socket
import subprocess

from cardsuite.project import Project
from cardsuite.sim.bridge import JVM_OPTIONS, bridge_classpath, start_jvm

PROVIDER = "com.licel.jcardsim.crypto.SecureRandomNullProvider"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_vpcd_main(project: Project, classpath: list[str]) -> subprocess.CompletedProcess[str]:
    """VpcdMain up to its connection attempt: nothing listens on the port, so a card that starts exits 1."""
    cmd = ["java", *JVM_OPTIONS, "-cp", ":".join(classpath), "cardsuite.simbridge.vpcd.VpcdMain",
           "--host", "127.0.0.1", "--port", str(_closed_port()), "--connect-timeout", "0.2",
           "--classpath", str(project.sim_classes)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def test_jcardsim_first_on_the_classpath_stops_the_bridge_at_start(project: Project) -> None:
    bridge, *jars = bridge_classpath(project)
    started = _start_vpcd_main(project, [*jars, bridge])
    assert started.returncode == 2, started.stderr
    assert f"jCardSim's own {PROVIDER}" in started.stderr
    assert project.jcardsim_jar().name in started.stderr  # where the wrong class came from
    assert "before the jCardSim jar" in started.stderr


def test_the_bridge_first_starts_the_card(project: Project) -> None:
    started = _start_vpcd_main(project, bridge_classpath(project))
    assert started.returncode == 1, started.stderr  # set up, then no vpcd to connect to
    assert PROVIDER not in started.stderr


def test_the_in_process_jvm_uses_the_bridge_provider(project: Project) -> None:
    start_jvm(project)
    import jpype

    used = jpype.JClass("java.lang.Class").forName(PROVIDER, False, jpype.JClass("cardsuite.simbridge.RandomSource")
                                                  .class_.getClassLoader())
    assert jpype.JClass("cardsuite.simbridge.RandomSource$Bridge").class_.isAssignableFrom(used)
    jpype.JClass("cardsuite.simbridge.RandomSource").check()  # no exception
