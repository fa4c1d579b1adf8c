"""What a card option names (sim, vpcd[:slot], reader:NAME), opened as a transport."""

from __future__ import annotations

from pathlib import Path

from cardsuite.errors import ConfigurationError
from cardsuite.project import Project
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.sim.vpcd import VPCD_READER
from cardsuite.transport.base import Transport, apdu_timeout
from cardsuite.transport.pcsc import PcscTransport
from cardsuite.transport.transcript import replay

REPLAY = "replay:"


class ReplayTransport(SimulatorTransport):
    """`--card replay:FILE`: a fresh simulated card that first plays the recorded session FILE (see
    cardsuite.transport.transcript), failing with the first response that differs from the recording; then the
    card as that session left it."""

    def __init__(self, transcript: Path, project: Project | None = None) -> None:
        super().__init__(project, name=f"replay:{transcript}")
        self.transcript = transcript
        self.replayed = 0

    def connect(self) -> None:
        if self._card is not None:
            return
        super().connect()
        trace, self.trace = self.trace, None  # the replay itself is not part of the caller's trace
        try:
            self.replayed = replay(self.transcript, self)
        except BaseException:
            self.disconnect()
            raise
        finally:
            self.trace = trace


def open_transport(spec: str, project: Project | None = None, timeout: float | str | None = None) -> Transport:
    """'sim' (in-process), 'vpcd[:slot]' (a simulator must be attached), 'reader:<name or index>', 'replay:FILE'
    (a simulated card after a recorded session);
    ``timeout`` the per-APDU timeout of a PC/SC card (see transport.apdu_timeout)."""
    if spec == "sim":
        return SimulatorTransport(project)
    if spec.startswith(REPLAY) and len(spec) > len(REPLAY):
        return ReplayTransport(Path(spec[len(REPLAY):]), project)
    if spec == "vpcd" or spec.startswith("vpcd:"):
        slot = spec[len("vpcd:"):] or "0"
        if not (slot.isascii() and slot.isdigit()):
            raise ConfigurationError(f"card {spec!r}: vpcd takes a slot number (vpcd:0, vpcd:1)")
        return PcscTransport(VPCD_READER.format(slot=int(slot)), apdu_timeout(timeout))
    if spec.startswith("reader:"):
        return PcscTransport(spec.split(":", 1)[1], apdu_timeout(timeout))
    raise ConfigurationError(f"unknown card {spec!r}: use sim, vpcd[:slot], reader:<name or index> or replay:FILE")
