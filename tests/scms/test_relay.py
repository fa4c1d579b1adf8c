"""The ADS's side of the terminal link (RelayTransport) without a server: a run of commands goes out as one
message and its answers come back in one, which must end where the agent's rule ends a run."""

from __future__ import annotations

import pytest
from cardsuite.errors import CardsuiteError
from cardsuite.scms.relay import Message, RelayError, RelayTransport

OK, FULL = "9000", "6A84"
RUN = [bytes.fromhex("80E80000021122"), bytes.fromhex("80E80001023344"), bytes.fromhex("80E88002025566")]


def _answered(rapdus: list[str]) -> tuple[list[bytes] | RelayError, list[Message]]:
    sent: list[Message] = []
    relay = RelayTransport(sent.append, atr=b"\x3b\x00")
    relay.deliver(Message("response", 2, {"command": 1, "rapdus": rapdus}))
    try:
        return relay.transmit_raw_many(RUN), sent
    except RelayError as exc:
        return exc, sent


@pytest.mark.parametrize("rapdus", [[OK, OK, OK], [OK, FULL], [FULL]], ids=["whole", "cut", "first"])
def test_a_run_goes_in_one_message_and_its_answers_come_in_one(rapdus: list[str]) -> None:
    answers, sent = _answered(rapdus)
    assert answers == [bytes.fromhex(r) for r in rapdus]
    assert [(m.kind, m.body["apdus"]) for m in sent] == [("apdus", [c.hex().upper() for c in RUN])]


@pytest.mark.parametrize("rapdus", [[OK, OK], [OK, FULL, OK], [FULL, OK], [OK, OK, OK, OK], []],
                         ids=["short", "past-a-refusal", "refusal-first", "too-many", "none"])
def test_answers_that_do_not_end_at_the_first_refusal_are_refused(rapdus: list[str]) -> None:
    answers, _ = _answered(rapdus)
    assert isinstance(answers, RelayError), answers
    assert "answers to a run of 3" in str(answers) or "no list rapdus" in str(answers)


@pytest.mark.parametrize(("body", "raised"), [
    ({"ok": False, "reason": "card answered 63C2", "sw": 0x63C2}, "StatusError"),
    ({"ok": False, "reason": "this terminal cannot ask for a PIN"}, "TransportError"),
    ({"ok": False, "reason": "odd", "sw": "63C2"}, "TransportError"),  # not a status word: just a refusal
], ids=["card-refused", "terminal-refused", "malformed-sw"])
def test_a_pin_step_refused_by_the_card_comes_back_with_its_status_word(body: dict, raised: str) -> None:
    relay = RelayTransport(lambda _message: None, atr=b"\x3b\x00")
    relay.deliver(Message("response", 2, {"command": 1, **body}))
    with pytest.raises(CardsuiteError) as caught:
        relay.cardholder_pin(bytes.fromhex("A000000001"), "12345678", "87654321")
    assert type(caught.value).__name__ == raised
    if raised == "StatusError":
        assert caught.value.sw == 0x63C2  # type: ignore[attr-defined]
