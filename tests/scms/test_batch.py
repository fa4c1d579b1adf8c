"""Pre-issuance: orders imported (CSV, JSON; a bad file refused whole), the bureau's file rendered from the
profiles, and each order tracked to its card's life cycle once served by the ADS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cardsuite.errors import ConfigurationError
from cardsuite.project import Project
from cardsuite.scms.ads import PostIssuance
from cardsuite.scms.batch import export_batch, import_orders, link_card, order_states, read_orders
from cardsuite.scms.system import System
from cardsuite.sim.inprocess import SimulatorTransport

from tests.scms.conftest import card_identity


def test_orders_to_secured(scms: System, project: Project, card: SimulatorTransport, tmp_path: Path) -> None:
    profiles = project.root / "profiles" / "cards"
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text("ref,holder,profile\nA-1,Hong Gildong,sim-suite\nA-2,Kim Cheolsu,sim-suite\n")
    json_file = tmp_path / "more.json"
    json_file.write_text(json.dumps([{"ref": "B-1", "holder": "Lee Younghee", "profile": "field-wallet"}]))
    db = scms.database()
    assert import_orders(db, read_orders(csv_file), "batch-1", profiles) == 2
    assert import_orders(db, read_orders(json_file), "batch-2", profiles) == 1
    with pytest.raises(ConfigurationError, match="imported before"):
        import_orders(db, read_orders(csv_file), "batch-1", profiles)
    exported = export_batch(db, "batch-1", profiles).splitlines()
    assert exported[0] == "order,holder,profile,packages,applications"
    assert exported[1].startswith("A-1,Hong Gildong,sim-suite,isofs isocmd,isoapplet wallet")
    with pytest.raises(ConfigurationError, match="no orders waiting"):
        export_batch(db, "batch-1", profiles)
    cin = card_identity(card)
    link_card(db, "A-1", cin)
    request = db.new_request("bureau", "install", "isoapplet")
    PostIssuance(scms, db, project, request).run(card)
    assert order_states(db, "batch-1") == {"A-1": "SECURED", "A-2": "exported"}


def test_a_bad_order_file_is_refused_whole(scms: System, project: Project, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ref,holder,profile\nC-1,Park,sim-suite\nC-2,,sim-suite\n")
    with pytest.raises(ConfigurationError, match="order 2 lacks holder"):
        read_orders(bad)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("ref,holder,profile\nC-1,Park,sim-suite\nC-2,Choi,nosuch\n")
    db = scms.database()
    with pytest.raises(ConfigurationError, match="no card profile 'nosuch'"):
        import_orders(db, read_orders(unknown), "b", project.root / "profiles" / "cards")
    assert db.query("SELECT COUNT(*) FROM scms_orders") == [(0,)]
