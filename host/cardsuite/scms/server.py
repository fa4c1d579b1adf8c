"""The SCMS server: one HTTPS (TLS 1.3) ASGI application, Starlette on uvicorn. Its modules keep their
boundaries: CMS and the database (cardsuite.scms.db), AMS (ads.catalogue), KMS (kms), ADS (ads); this module
only authenticates terminals and carries the relay (cardsuite.scms.relay) to an ADS run in a worker thread.

Routes: GET /health; GET /api/catalogue (a terminal's token); WebSocket /terminal (Authorization: Bearer
<terminal token>); the console's pages under /console (cardsuite.scms.console).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from cardsuite.deploy.inventory import Inventory
from cardsuite.errors import CardsuiteError
from cardsuite.project import Project
from cardsuite.scms.ads import ACTIONS, PostIssuance, catalogue
from cardsuite.scms.console.app import Console
from cardsuite.scms.db import Database
from cardsuite.scms.pool import Pool
from cardsuite.scms.relay import (
    CLOSE_PROTOCOL,
    CLOSE_UNAUTHORISED,
    PING_TIMEOUT,
    RELAY_PROTOCOL,
    InOrder,
    Message,
    RelayError,
    RelayTransport,
    with_progress,
)
from cardsuite.scms.system import System, terminal_for_token
from cardsuite.tooling.cap import CapCache
from cardsuite.wallet.store import WalletStore

# ADS runs at once per serve process; a request beyond them waits, its terminal linked (accepted, then silent).
# More do not serve more: the work is CPU-bound (2 cores, 50 terminals, two serve processes, 2026-12-02: 64 at
# once gave 5.8-6.4 post-issuances per second and p50 7.3-8.0 s, against 6.4 and 5.3-5.7 s with these)
ADS_WORKERS = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor's size, chosen now


def _bearer(headers) -> str:  # noqa: ANN001 - Starlette's Headers
    value = headers.get("authorization", "")
    return value[7:] if value.lower().startswith("bearer ") else ""


@dataclass
class Server:
    system: System
    project: Project
    databases: Pool[Database] = field(init=False)  # the links' connections
    inventories: Pool[Inventory] = field(init=False)  # the ADS's
    workers: ThreadPoolExecutor = field(init=False)  # the ADS runs
    caps: CapCache = field(init=False, default_factory=CapCache)  # the catalogue's CAP files, read once

    def __post_init__(self) -> None:
        # the ADS's write-only transactions committed while the terminal works (inventory.settle_writes)
        self.databases = Pool(lambda: self.system.database(write_behind=True))
        self.inventories = Pool(lambda: Inventory(self.system.inventory_url, write_behind=True))
        self.workers = ThreadPoolExecutor(ADS_WORKERS, thread_name_prefix="ads")

    @property
    def claimant(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"

    def _terminal(self, db: Database, token: str) -> str | None:
        return terminal_for_token(db, token) if token else None

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "server": self.claimant})

    async def catalogue(self, request: Request) -> JSONResponse:
        db = self.databases.take()
        try:
            if self._terminal(db, _bearer(request.headers)) is None:
                return JSONResponse({"error": "unknown or revoked terminal token"}, status_code=401)
        finally:
            self.databases.give(db)
        return JSONResponse({"applications": sorted(catalogue(self.project)), "actions": list(ACTIONS)})

    async def terminal(self, websocket: WebSocket) -> None:
        db = self.databases.take()
        try:
            terminal = self._terminal(db, _bearer(websocket.headers))
            if terminal is None:
                await websocket.close(CLOSE_UNAUTHORISED, "unknown or revoked terminal token")
                return
            await websocket.accept()
            await self._serve(websocket, db, terminal)
        except WebSocketDisconnect:
            pass
        finally:
            self.databases.give(db)

    async def _serve(self, websocket: WebSocket, db: Database, terminal: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            first = Message.decode(await websocket.receive_text())
            action, target = first.body.get("action"), first.body.get("target")
            if first.kind != "request" or first.seq != 1 or action not in ACTIONS \
                    or not isinstance(target, str | None):
                raise RelayError(f"the first message is request 1 with an action ({', '.join(ACTIONS)}) and "
                                 "target names")  # a string: the applications separated by spaces
            atr = first.apdu("atr")
            spoken = first.body.get("protocol", 1)
            if spoken != RELAY_PROTOCOL:
                raise RelayError(f"the agent speaks relay protocol {spoken}, this server {RELAY_PROTOCOL}: "
                                 "update the terminal's cardsuite")
        except RelayError as exc:
            await websocket.close(CLOSE_PROTOCOL, str(exc)[:120])
            return
        request_id = db.new_request(terminal, str(action), str(target) if target else None, self.claimant)
        outgoing: asyncio.Queue[Message] = asyncio.Queue()
        lines: list[str] = []  # the ADS's progress since its last message (its thread's alone)

        def send(message: Message) -> None:
            loop.call_soon_threadsafe(outgoing.put_nowait, with_progress(message, lines))

        relay = RelayTransport(send, atr, name=f"terminal {terminal}")
        # the ADS's thread takes the link's connection: the loop needs it no more until the job has ended
        ads = PostIssuance(self.system, db, self.project, request_id, progress=lines.append,
                           read_cap=self.caps.read)
        await websocket.send_text(Message("accepted", 0, {"request": request_id}).encode())

        def run() -> Message:
            inventory = ads.inventory = self.inventories.take()  # taken and given back in the ADS's thread
            try:
                cin, outcome = ads.run(relay)
                end = Message("done", 0, {"request": request_id, "cin": cin, "outcome": outcome})
            except (CardsuiteError, ValueError) as exc:
                end = Message("failed", 0, {"request": request_id, "reason": str(exc)})
            except Exception as exc:  # noqa: BLE001 - the terminal is told whatever failed: escaping here
                # dropped the link without a close frame (a PKCS#11 GeneralError under 50 terminals, the bench)
                end = Message("failed", 0, {"request": request_id, "reason": f"{type(exc).__name__}: {exc}"})
            finally:
                self.inventories.give(inventory)
            return with_progress(end, lines)

        job = loop.run_in_executor(self.workers, run)
        order = InOrder(first.seq)
        reader = asyncio.ensure_future(websocket.receive_text())
        writer = asyncio.ensure_future(outgoing.get())
        try:
            while True:
                done, _ = await asyncio.wait({reader, writer, job}, return_when=asyncio.FIRST_COMPLETED)
                if writer in done:
                    await websocket.send_text(writer.result().encode())
                    writer = asyncio.ensure_future(outgoing.get())
                if reader in done:
                    message = Message.decode(reader.result())
                    if not order.accept(message.seq):
                        relay.deliver(None)
                        raise RelayError(f"relay message {message.seq} replayed or out of order: link closed")
                    relay.deliver(message)
                    reader = asyncio.ensure_future(websocket.receive_text())
                if job in done:
                    while not outgoing.empty():
                        await websocket.send_text(outgoing.get_nowait().encode())
                    await websocket.send_text(job.result().encode())
                    break
        except (RelayError, WebSocketDisconnect) as exc:
            relay.deliver(None)
            await job
            if isinstance(exc, RelayError):
                await websocket.close(CLOSE_PROTOCOL, str(exc)[:120])
        finally:
            reader.cancel()
            writer.cancel()
            if not job.done():  # the link ended some other way: the ADS is told, and ends (recording the
                # request's outcome) before terminal() gives back the connection it uses
                relay.deliver(None)
                await asyncio.wait({job})

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        """The issuer's wallet.db held open while serving (and brought to this cardsuite's schema once), for
        this alone: each personalisation opens and closes its own connection, and the last to close checkpoints
        the write-ahead log and deletes it, which the next open makes again. Held open, an open and close cost
        0.2-0.3 ms against 0.7-1.0 (2026-12-04); SQLite checkpoints when the log reaches 1000 pages instead
        (https://sqlite.org/wal.html, "Automatic Checkpoint")."""
        wallets = WalletStore(self.system.wallet_db)
        # a read: a connection takes its share of the log only when it first reads after the switch to it,
        # which a new file's comes after (WalletStore opens it in write-ahead-log mode once migrated)
        wallets.schema_version  # noqa: B018
        try:
            yield
        finally:
            wallets.close()

    def app(self) -> Starlette:
        return Starlette(lifespan=self._lifespan,
                         routes=[Route("/health", self.health), Route("/api/catalogue", self.catalogue),
                                 WebSocketRoute("/terminal", self.terminal),
                                 Route("/", lambda request: RedirectResponse("/console/", status_code=303)),
                                 Mount("/console", app=Console(self.system, self.project).app())])


def serve(system: System, project: Project, host: str, port: int) -> None:
    """Runs until interrupted. TLS 1.3 only (the context's minimum version)."""
    import uvicorn

    # loop "auto": uvloop, which the scms extra installs (its TLS and thread wake-ups cost the relay less than
    # asyncio's: 2026-12-03, one server of each side by side, 20 lone post-issuances each, twice with the two
    # swapped: p50 141.7 against 149.0 ms, 182.2 against 186.7 ms)
    # ws_per_message_deflate off (RFC 7692 compression, which the agent offers): it cost this process ~2-4 ms
    # of CPU a post-issuance, mostly the LOAD run's message, and the lone terminal's request ~2.5 ms
    # (2026-12-03, two servers side by side, 40 lone post-issuances each: 43.8 against 46.2 ms outside the
    # card, 29.0 against 31.2 ms of server CPU). What it would save on a slow link (~30 KB of hex a LOAD run,
    # tens of milliseconds at a few Mbit/s) is small beside a real card's seconds of LOAD.
    config = uvicorn.Config(Server(system, project).app(), host=host, port=port, ssl_certfile=str(system.server_cert),
                            ssl_keyfile=str(system.server_key), log_level="warning", ws="websockets-sansio",
                            ws_ping_timeout=PING_TIMEOUT, ws_per_message_deflate=False, loop="auto")
    config.load()
    assert config.ssl is not None
    config.ssl.minimum_version = ssl.TLSVersion.TLSv1_3
    # No TLS 1.3 session tickets (RFC 8446 4.6.1): no client resumes (an agent makes each link afresh), and
    # the tickets sent after the handshake stalled about 1 WebSocket handshake in 400 here (no answer to the
    # upgrade, or a broken one: the 20 s stalls of the bench), none in 6,000 without them (2026-12-02)
    config.ssl.num_tickets = 0
    uvicorn.Server(config).run()
