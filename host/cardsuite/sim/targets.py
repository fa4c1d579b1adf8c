"""What a card option names (sim, vpcd[:slot], reader:NAME), opened as a transport."""

from __future__ import annotations

from cardsuite.errors import ConfigurationError
from cardsuite.project import Project
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.sim.vpcd import VPCD_READER
from cardsuite.transport.base import Transport, apdu_timeout
from cardsuite.transport.pcsc import PcscTransport


def open_transport(spec: str, project: Project | None = None, timeout: float | str | None = None) -> Transport:
    """'sim' (in-process), 'vpcd[:slot]' (a simulator must be attached), 'reader:<name or index>';
    ``timeout`` the per-APDU timeout of a PC/SC card (see transport.apdu_timeout)."""
    if spec == "sim":
        return SimulatorTransport(project)
    if spec == "vpcd" or spec.startswith("vpcd:"):
        slot = spec[len("vpcd:"):] or "0"
        if not (slot.isascii() and slot.isdigit()):
            raise ConfigurationError(f"card {spec!r}: vpcd takes a slot number (vpcd:0, vpcd:1)")
        return PcscTransport(VPCD_READER.format(slot=int(slot)), apdu_timeout(timeout))
    if spec.startswith("reader:"):
        return PcscTransport(spec.split(":", 1)[1], apdu_timeout(timeout))
    raise ConfigurationError(f"unknown card {spec!r}: use sim, vpcd[:slot] or reader:<name or index>")
