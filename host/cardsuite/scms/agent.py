"""The terminal: relays the ADS's APDUs to a card here, in order, and holds no key. It trusts only the SCMS's
CA (the file it is given: no system store), speaks TLS 1.3 only, and authenticates with the token the
administrator issued. Progress goes to a callback; the library never prints.
"""

from __future__ import annotations

import functools
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cardsuite.apdu import StatusError
from cardsuite.errors import CardsuiteError, TransportError
from cardsuite.scms.relay import (
    CLOSE_PROTOCOL,
    CLOSE_UNAUTHORISED,
    PING_TIMEOUT,
    RELAY_PROTOCOL,
    Message,
    RelayError,
)
from cardsuite.transport.base import Transport
from cardsuite.wallet.card import WalletClient


class AgentError(CardsuiteError):
    """The server refused the terminal, the link broke, or the request failed (the server's reason)."""


@dataclass(frozen=True)
class AgentResult:
    request: int
    cin: str
    outcome: str
    relayed: int  # commands (and resets) relayed to the card
    round_trips: int  # the server's messages that waited for an answer (a run of commands is one)


def tls_context(ca: Path) -> ssl.SSLContext:
    """TLS 1.3 trusting ``ca`` alone; one context per CA file as it is (its modification time and size), which a
    terminal's requests share: reading the CA into a new one cost 0.8 ms a request (2026-12-03)."""
    if not ca.is_file():
        raise AgentError(f"no CA certificate at {ca}")
    stat = ca.stat()
    return _tls_context(str(ca.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _tls_context(ca: str, _mtime_ns: int, _size: int) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def _ws_url(server: str) -> str:
    if not server.startswith("https://"):
        raise AgentError(f"--server {server!r}: the SCMS is reached over https:// only")
    return "wss://" + server[len("https://"):].rstrip("/") + "/terminal"


OPEN_TIMEOUT = 20.0  # seconds for TCP, TLS and the WebSocket handshake together, per server


def _open_tls(server: str, context: ssl.SSLContext, timeout: float) -> ssl.SSLSocket:
    """TCP and TLS opened here, not by websockets: its sync client clears the socket's timeout after TLS, and a
    handshake that then fails leaves its reader thread blocked in SSLSocket.read (TLS 1.3's session tickets
    make the socket readable) while connect() joins that thread with no timeout. Our socket keeps one."""
    parts = urlsplit(server)
    host = parts.hostname or ""
    raw = socket.create_connection((host, parts.port or 443), timeout=timeout)
    # each relay message is small and waits for its answer: Nagle's algorithm would hold a run's responses back
    # until the one before is acknowledged (delayed ACK: up to 40 ms on a real network)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return context.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise


PinPrompt = Callable[[str], str]  # the PUK to show (once) -> the PIN the cardholder chose


def set_cardholder_pin(transport: Transport, aid: bytes, initial_pin: str, ask: PinPrompt, puk: str) -> None:
    """The wallet's one-time PIN replaced by the cardholder's (CHANGE REFERENCE DATA, here at the terminal)."""
    client = WalletClient(transport, aid)
    client.select()
    client.change_pin(initial_pin, ask(puk))


# said of a link that broke before the request went out: the server has no record of it (the bench counts on it)
UNSENT = " (before the request was sent)"


class LinkBroken(AgentError):
    """The link to the server broke before the request ended (the server may have gone away).
    ``request_sent``: whether the request had gone out (else the server holds no record of it)."""

    def __init__(self, message: str, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


def run_request(server: str | Sequence[str], ca: Path, token: str, transport: Transport, *, action: str,
                target: str | Sequence[str] | None, progress: Callable[[str], None] | None = None,
                ask_pin: PinPrompt | None = None, open_timeout: float = OPEN_TIMEOUT) -> AgentResult:
    """One post-issuance request, relayed to the end. ``ask_pin`` asks the cardholder for the wallet's PIN.
    A server that does not complete TCP, TLS and the WebSocket handshake within ``open_timeout`` is passed
    over like one whose link broke. ``target``: an application of the catalogue, or several installed in
    one request (one deploy run, as a card profile's).
    With several servers (one system), a link that breaks sends the request again to the next one: the
    server reaps the request a dead server left running and the deployer's plan finishes the card."""
    servers = [server] if isinstance(server, str) else list(server)
    if target is not None and not isinstance(target, str):
        target = " ".join(target)
    for url in servers:  # every address checked before the first is tried (a typo in the last one told now)
        _ws_url(url)
    for i, url in enumerate(servers):
        try:
            return _run_once(url, ca, token, transport, action=action, target=target, progress=progress,
                             ask_pin=ask_pin, open_timeout=open_timeout)
        except LinkBroken as exc:
            if i == len(servers) - 1:
                raise
            if progress is not None:
                progress(f"{exc}{'' if exc.request_sent else UNSENT}: again through {servers[i + 1]}")
    raise AgentError("no server given")


# A run longer than this goes to the card in pieces of this many commands, the end of each told (progress):
# the ADS's own lines come only with its next message, and a real card takes seconds for a deploy's loads and
# installs, which a relay sends as one run
RUN_PROGRESS_EVERY = 32


def _relay_run(transport: Transport, commands: list[bytes], progress: Callable[[str], None] | None) -> list[bytes]:
    """Transport.transmit_raw_many of a run: the answers up to the first that is not 9000."""
    if progress is None or len(commands) <= RUN_PROGRESS_EVERY:
        return transport.transmit_raw_many(commands)
    answers: list[bytes] = []
    for start in range(0, len(commands), RUN_PROGRESS_EVERY):
        piece = commands[start : start + RUN_PROGRESS_EVERY]
        answered = transport.transmit_raw_many(piece)
        answers += answered
        if len(answered) < len(piece) or answered[-1][-2:] != b"\x90\x00":
            break
        progress(f"    card: {len(answers)}/{len(commands)} commands of the run done")
    return answers


def _run_once(server: str, ca: Path, token: str, transport: Transport, *, action: str, target: str | None,
              progress: Callable[[str], None] | None, ask_pin: PinPrompt | None,
              open_timeout: float) -> AgentResult:
    from websockets.exceptions import InvalidStatus, WebSocketException
    from websockets.sync.client import connect

    seq = 1
    relayed = round_trips = 0
    request_sent = False
    try:
        started = time.monotonic()
        tls = _open_tls(server, tls_context(ca), open_timeout)
        # The socket's timeout outlasts the handshake's (what is left of open_timeout) by a second: the
        # handshake's TimeoutError comes first, then the reader's blocked read ends and connect() returns.
        tls.settimeout(max(open_timeout - (time.monotonic() - started), 0.0) + 1.0)
        try:
            # ws:// over the TLS socket given: websockets must not wrap it in TLS a second time
            link = connect(_ws_url(server).replace("wss://", "ws://", 1), sock=tls,
                           additional_headers={"Authorization": f"Bearer {token}"},
                           open_timeout=max(open_timeout - (time.monotonic() - started), 0.1), max_size=2**20,
                           ping_timeout=PING_TIMEOUT)
        except TimeoutError:
            tls.close()
            raise LinkBroken(f"cannot reach the SCMS at {server}: no WebSocket handshake within "
                             f"{open_timeout:g} s", request_sent=False) from None
        except BaseException:
            tls.close()
            raise
        tls.settimeout(PING_TIMEOUT)  # a TLS record stalled that long is a dead link, as the keepalive judges
        with link, transport.exclusive():
            request_sent = True  # from here the server may have it (a send that fails may have gone out)
            link.send(Message("request", seq, {"action": action, "target": target, "protocol": RELAY_PROTOCOL,
                                               "atr": transport.atr.hex().upper()}).encode())
            for text in link:
                message = Message.decode(text)
                told = message.body.get("progress", [])
                if not isinstance(told, list):
                    raise RelayError("a relay message's progress is a list of lines")
                for line in told if progress is not None else ():
                    progress(str(line))
                round_trips += message.kind in ("apdu", "apdus", "reset", "pin")
                if message.kind in ("apdu", "reset"):
                    if message.kind == "apdu":
                        answer = transport.transmit_raw(message.apdu("apdu"))
                    else:
                        answer = transport.reset()
                    relayed += 1
                    seq += 1
                    link.send(Message("response", seq, {"command": message.seq,
                                                        "rapdu": answer.hex().upper()}).encode())
                elif message.kind == "apdus":  # a run: up to the first answer not 9000, the answers in one message
                    answers = _relay_run(transport, message.apdus("apdus"), progress)
                    relayed += len(answers)
                    seq += 1
                    link.send(Message("response", seq, {"command": message.seq,
                                                        "rapdus": [answer.hex().upper() for answer in answers]}
                                      ).encode())
                elif message.kind == "pin":
                    seq += 1
                    link.send(Message("response", seq, {"command": message.seq,
                                                        **_pin_step(transport, message, ask_pin)}).encode())
                elif message.kind == "done":
                    return AgentResult(int(message.body["request"]), str(message.body["cin"]),
                                       str(message.body["outcome"]), relayed, round_trips)
                elif message.kind == "failed":
                    raise AgentError(f"the request failed: {message.body.get('reason')}")
            if link.close_code in (CLOSE_UNAUTHORISED, CLOSE_PROTOCOL):
                raise AgentError(f"the server closed the link: {link.close_reason or 'no reason given'}")
            raise LinkBroken(f"the link to {server} broke before the request ended")
    except InvalidStatus as exc:
        raise AgentError(f"the server refused the terminal (HTTP {exc.response.status_code})") from None
    except ssl.SSLCertVerificationError as exc:
        raise AgentError(f"the server's certificate is not from the pinned CA: {exc.verify_message}") from None
    except (OSError, WebSocketException) as exc:
        if isinstance(exc, TransportError):
            raise
        raise LinkBroken(f"cannot reach the SCMS at {server}: {exc}", request_sent) from None
    except RelayError as exc:
        raise AgentError(str(exc)) from None


def _pin_step(transport: Transport, message: Message, ask_pin: PinPrompt | None) -> dict[str, object]:
    if ask_pin is None:
        return {"ok": False, "reason": "this terminal cannot ask for a PIN"}
    try:
        set_cardholder_pin(transport, message.apdu("aid"), str(message.body.get("initial", "")), ask_pin,
                           str(message.body.get("puk", "")))
    except StatusError as exc:  # the card's answer, for the server to tell a one-time PIN replaced already
        return {"ok": False, "reason": str(exc), "sw": exc.sw}
    except CardsuiteError as exc:
        return {"ok": False, "reason": str(exc)}
    return {"ok": True}
