"""Applet coverage (issue 13): the JaCoCo agent on the simulator's JVM, in-process (a child Python process, its
JPype JVM started with the agent) and behind vpcd, and the report of what ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from cardsuite.errors import ConfigurationError
from cardsuite.project import Project
from cardsuite.settings import ENV_COVERAGE
from cardsuite.sim.bridge import coverage_options
from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots
from cardsuite.tooling.coverage import write_report
from support import ECHO_AID

ECHO_ROUND_TRIPS = f"""
from cardsuite.apdu import CommandAPDU
from cardsuite.sim.inprocess import SimulatorTransport
with SimulatorTransport() as card:
    card.select(bytes.fromhex("{ECHO_AID.hex()}"))
    for size in (0, 3):
        card.send(CommandAPDU(0x80, 0x01, 0, 0, bytes(size), le=size or None))
"""


@pytest.fixture(scope="module")
def jacoco(project: Project) -> Project:
    try:
        project.jacoco_jar("agent"), project.jacoco_jar("cli")
    except ConfigurationError as error:
        pytest.skip(str(error))
    return project


def _echo_lines(summary) -> tuple[int, int]:
    echo = summary.packages["cardsuite.echo"]["LINE"]
    return echo.covered, echo.missed


def test_without_the_variable_no_agent(project: Project) -> None:
    assert coverage_options(project, env={}) == []


def test_in_process_coverage_of_an_echo_session(jacoco: Project, tmp_path: Path) -> None:
    exec_file = tmp_path / "jacoco.exec"
    env = {**os.environ, ENV_COVERAGE: str(exec_file)}
    subprocess.run([sys.executable, "-c", ECHO_ROUND_TRIPS], env=env, check=True, cwd=jacoco.root, timeout=120)
    summary = write_report(jacoco, exec_file, out=tmp_path / "report")
    covered, missed = _echo_lines(summary)
    assert covered > 0 and missed > 0  # the echo command ran; its 61xx/6Cxx paths did not
    # every manifest package is in the report, those whose commands never ran near 0
    assert set(summary.packages) >= {"cardsuite.echo", "cardsuite.wallet", "cardsuite.isofs"}
    assert summary.packages["cardsuite.wallet"]["BRANCH"].percent < 1  # its install() ran, no command
    assert summary.lines.covered == sum(p["LINE"].covered for p in summary.packages.values())
    html = tmp_path / "report" / "html"
    assert (html / "index.html").is_file()
    assert (html / "cardsuite.echo" / "EchoApplet.java.html").is_file()  # sources found: lines are shown
    root = ElementTree.parse(tmp_path / "report" / "coverage.xml").getroot()
    assert {c.get("type") for c in root.findall("counter")} >= {"LINE", "BRANCH"}


def test_a_second_run_appends_to_the_same_data(jacoco: Project, tmp_path: Path) -> None:
    exec_file = tmp_path / "jacoco.exec"
    env = {**os.environ, ENV_COVERAGE: str(exec_file)}
    subprocess.run([sys.executable, "-c", ECHO_ROUND_TRIPS], env=env, check=True, cwd=jacoco.root, timeout=120)
    size = exec_file.stat().st_size
    subprocess.run([sys.executable, "-c", ECHO_ROUND_TRIPS], env=env, check=True, cwd=jacoco.root, timeout=120)
    assert exec_file.stat().st_size > size


def test_coverage_over_vpcd(jacoco: Project, tmp_path: Path, monkeypatch) -> None:
    ensure_pcscd()
    slots = free_slots()
    if not slots:
        pytest.skip("every vpcd slot already holds a card")
    exec_file = tmp_path / "jacoco.exec"
    monkeypatch.setenv(ENV_COVERAGE, str(exec_file))
    with VpcdSimulator(jacoco, slot=slots[0]) as simulator, simulator.transport() as card:
        card.select(ECHO_AID)
    summary = write_report(jacoco, exec_file, out=tmp_path / "report")  # the bridge wrote it as it stopped
    covered, _ = _echo_lines(summary)
    assert covered > 0
