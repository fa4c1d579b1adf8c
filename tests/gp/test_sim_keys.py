"""`cardsuite sim --card-manager` gives the simulated card the keys in $CARDSUITE_SIM_KEYS, as its help says
(before, the variable was dropped on the way to the bridge and the card had the development keys); the host
then needs those keys, and the development keys only with --dev-keys, which this card refuses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cardsuite.settings import ENV_GP_KEY, ENV_GUARD, ENV_SIM_KEYS
from cardsuite.sim.vpcd import ensure_pcscd, slot_has_card

KEY = "00112233445566778899AABBCCDDEEFF"
CLI = [sys.executable, "-m", "cardsuite"]


@pytest.mark.e2e
def test_cardsuite_sim_uses_the_keys_from_the_environment(tmp_path: Path) -> None:
    ensure_pcscd()
    if slot_has_card(0):
        pytest.skip("vpcd slot 0 already holds a card (`cardsuite sim` uses slot 0)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_GP_KEY)}
    env[ENV_GUARD] = str(tmp_path / "guard.db")
    sim = subprocess.Popen([*CLI, "sim", "--card-manager", "scp03", "--empty"], stdout=subprocess.PIPE, text=True,
                           env={**env, ENV_SIM_KEYS: KEY})
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline()
        assert "simulated card ready" in line, line
        gp = [*CLI, "gp", "list", "--card", "vpcd:0"]
        run = subprocess.run(gp, env={**env, ENV_GP_KEY: KEY}, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        refused = subprocess.run([*gp, "--dev-keys"], env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and refused.stderr.startswith("Error: "), refused.stderr
        assert KEY not in run.stdout + run.stderr + refused.stderr
    finally:
        sim.terminate()
        sim.wait(timeout=20)
        deadline = time.monotonic() + 5  # pcscd sees the card leave slot 0 a moment later: let the next test
        while slot_has_card(0) and time.monotonic() < deadline:  # find the slot free, not a card going away
            time.sleep(0.05)
