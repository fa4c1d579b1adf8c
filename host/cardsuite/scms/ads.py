"""ADS: the paper's 12-step post-issuance for one request, over any Transport (in process: a simulated card;
remote: the agent's relay, cardsuite.scms.relay). Callable as an API; the server only feeds it a transport.

Steps (seed 000): 1 the request; 2 SELECT of the card manager; 3 its answer; 4 the card's identity (CIN from
CPLC), checked with the CMS before any authentication (unknown or blacklisted cards are refused without
spending a try; a card whose cryptograms failed too often is refused as gp.guard does locally); 5 host
challenge (INITIALIZE UPDATE); 6 card challenge and cryptogram, checked through the KMS; 7 host cryptogram
(EXTERNAL AUTHENTICATE); 8 the actions offered (AMS catalogue against the card's contents); 9 the action
chosen; 10 the APDU script under the secure channel; 11 load, install, register (the card's answers); 12 the
new state recorded (CMS card, inventory, request).

Install is cardsuite.deploy's Deployer with the KMS's keys (DeployOptions.keys): the same plan, idempotent,
resumable. Every APDU exchange goes to the request's record masked by the one rule set (cardsuite.trace).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cardsuite.deploy.deployer import Deployer, DeployOptions, Step
from cardsuite.deploy.inventory import Inventory
from cardsuite.deploy.profiles import CardProfile, load_app_profile
from cardsuite.errors import CardsuiteError
from cardsuite.gp.client import ISD_AID, AuthenticationError, CardManagerError, GlobalPlatform, GPError
from cardsuite.gp.keys import KeyChoice, KeyProfile
from cardsuite.gp.scp import LEVELS, CardCryptogramError
from cardsuite.project import Project
from cardsuite.scms.db import Database
from cardsuite.scms.kms import Kms, TokenKeySet
from cardsuite.scms.system import System
from cardsuite.trace import Trace, TraceEntry
from cardsuite.transport.base import Transport

ACTIONS = ("install", "remove", "lock", "unlock")
LOAD_PROGRESS_EVERY = 8  # blocks between two progress lines to the terminal
MAX_AUTH_FAILURES = 3  # cryptogram or authentication failures before the ADS stops trying a card
ProgressSink = Callable[[str], None]
# the cardholder's PIN step, run where the card is: (wallet instance AID, one-time initial PIN, PUK) -> detail.
# Over the relay it is the agent's (RelayTransport.cardholder_pin); in process the caller's.
CardholderPin = Callable[[bytes, str, str], str]


class RequestRefused(CardsuiteError):
    """The ADS will not serve this request (the reason is the message and the request's record)."""


def catalogue(project: Project) -> dict[str, Path]:
    """AMS: the applications the SCMS can install, by name (the suite's application profiles, whose CAP
    files come from the manifest's build or the committed fixtures)."""
    return {path.stem: path for path in sorted((project.root / "profiles" / "apps").glob("*.toml"))}


@dataclass
class PostIssuance:
    """One request served: ``run`` returns the CIN of the card and a one-line outcome, raising
    RequestRefused (or the card's error) with the request recorded as failed."""

    system: System
    db: Database
    project: Project
    request_id: int
    progress: ProgressSink | None = None
    cardholder_pin: CardholderPin | None = None  # in process; a RelayTransport brings its own
    _step: int = 0
    _audit: list[tuple] = field(default_factory=list)
    _exchanges: list[tuple] = field(default_factory=list)

    def _record(self, name: str, outcome: str = "ok", detail: str = "") -> None:
        self._step += 1
        self.db.record_step(self.request_id, self._step, name, outcome, detail)
        if self.progress is not None:
            self.progress(f"{self._step:2}. {name}: {outcome}{f' ({detail})' if detail else ''}")

    def _on_exchange(self, entry: TraceEntry) -> None:
        self._exchanges.append((len(self._exchanges) + 1, entry.command, entry.response, entry.sw, entry.seconds))

    def _on_key_use(self, operation: str, label: str, detail: str) -> None:
        self._audit.append((time.time(), f"ads:{self.request_id}", operation, label, self.request_id, detail))

    def _flush(self) -> None:
        self.db.record_exchanges(self.request_id, self._exchanges)
        self.db.record_audit(self._audit)
        self._exchanges.clear()
        self._audit.clear()

    def run(self, transport: Transport) -> tuple[str, str]:
        request = self.db.request(self.request_id)
        if request is None:
            raise RequestRefused(f"no request {self.request_id}")
        if request.action not in ACTIONS:
            raise RequestRefused(f"action {request.action!r}: valid are {', '.join(ACTIONS)}")
        self._record("request", "ok", f"{request.action} {request.target or ''} from terminal {request.terminal}")
        transport.trace = Trace(sinks=[self._on_exchange])
        cin = None
        try:
            with self.system.kms(self._on_key_use) as kms, transport.exclusive():
                cin = self._identify(transport)
                outcome = self._serve(kms, transport, request.action, request.target or "", cin)
        except BaseException as exc:
            reason = str(exc) or type(exc).__name__
            self._record("outcome", "failed", reason)
            self._flush()
            self.db.finish_request(self.request_id, "failed", reason, cin)
            raise
        finally:
            transport.trace = None
        self._record("record", "ok", outcome)
        self._flush()
        self.db.finish_request(self.request_id, "done", outcome, cin)
        return cin, outcome

    def _identify(self, transport: Transport) -> str:
        gp = GlobalPlatform(transport, ISD_AID)
        gp.select()
        self._record("select card manager", "ok", ISD_AID.hex().upper())
        self._record("card answers", "ok", "FCI")
        try:
            cin = gp.cplc().identity
        except (GPError, CardManagerError):
            cin = gp.card_identity()
        card = self.db.card(cin)
        if card is None:
            self._record("card identity", "refused", f"{cin}: unknown to the CMS")
            raise RequestRefused(f"card {cin} is unknown to the CMS: import its order first")
        if card[4]:
            self._record("card identity", "refused", f"{cin}: blacklisted")
            raise RequestRefused(f"card {cin} is blacklisted")
        if card[5] >= MAX_AUTH_FAILURES:
            self._record("card identity", "refused", f"{cin}: {card[5]} authentication failures")
            raise RequestRefused(f"card {cin} failed authentication {card[5]} times: the ADS stops trying it "
                                 "(clear the count after checking its keys)")
        holder = self.db.claim_card(self.request_id, cin)
        if holder is not None:
            self._record("card identity", "refused", f"{cin}: being served by request {holder}")
            raise RequestRefused(f"card {cin} is being served by request {holder} (another terminal): try again "
                                 "when it has ended")
        self._record("card identity", "ok", cin)
        return cin

    def _keys(self, kms: Kms) -> KeyChoice:
        keys = self.system.card_keys
        token_keys = TokenKeySet(kms, keys.label, keys.kdf, keys.kvn)
        return KeyChoice(token_keys, f"token {self.system.token}, key {keys.label}", 3)  # type: ignore[arg-type]

    def _authenticated(self, kms: Kms, transport: Transport, cin: str) -> GlobalPlatform:
        gp = GlobalPlatform(transport, ISD_AID)
        gp.select()
        try:
            gp.open_secure_channel(self._keys(kms).keys, LEVELS["mac"], scp=3)  # type: ignore[arg-type]
        except (CardCryptogramError, AuthenticationError) as exc:
            self.db.count_auth_failure(cin)
            self._record("mutual authentication", "failed", str(exc))
            raise
        self._record("mutual authentication", "ok", "host challenge, card cryptogram (KMS), host cryptogram")
        return gp

    def _serve(self, kms: Kms, transport: Transport, action: str, target: str, cin: str) -> str:
        apps = catalogue(self.project)
        if action == "install":
            if target not in apps:
                raise RequestRefused(f"application {target!r} is not in the catalogue ({', '.join(apps)})")
            return self._install(kms, transport, cin, apps[target])
        gp = self._authenticated(kms, transport, cin)
        registry = gp.registry()
        self._record("actions offered", "ok", f"{len(registry.applications)} applications on the card")
        app = load_app_profile(apps[target]) if target in apps else None
        aid = (app.instance or app.applet) if app is not None else None
        if aid is None:
            raise RequestRefused(f"application {target!r} is not in the catalogue with an instance AID")
        if registry.application(aid) is None:
            raise RequestRefused(f"the card has no application {target} ({aid.hex().upper()})")
        self._record("action chosen", "ok", f"{action} {target}")
        if action == "remove":
            gp.delete(aid)
        else:
            gp.set_application_lock(aid, action == "lock")
        self._record("card script", "ok", f"{action} {aid.hex().upper()} under the secure channel")
        with Inventory(self.system.inventory_url, station=f"scms:{self.request_id}") as inventory:
            gp.select()
            gp.open_secure_channel(self._keys(kms).keys, LEVELS["mac"], scp=3)  # type: ignore[arg-type]
            inventory.record_card(cin, registry=gp.registry())
            inventory.record_event(cin, action, "ok", target)
        return f"{action} {target}"

    def _pin_step(self, transport: Transport) -> CardholderPin | None:
        return getattr(transport, "cardholder_pin", None) or self.cardholder_pin

    def _cardholder_pin(self, transport: Transport, aid: bytes, initial_pin: str, puk: str) -> None:
        step = self._pin_step(transport)
        assert step is not None  # checked before the deploy
        self._record("cardholder PIN", "ok", step(aid, initial_pin, puk))

    def _install(self, kms: Kms, transport: Transport, cin: str, app_path: Path) -> str:
        app = load_app_profile(app_path)
        profile = CardProfile(app_path, self.system.card_type,
                              KeyProfile(Path(f"token:{self.system.card_keys.label}")), "mac", (), (app,))

        def after(step: Step, outcome: str) -> None:
            self._record(f"{step.action} {step.name}", outcome, step.detail)

        # Personalisation: the wallet gets a one-time initial PIN and a PUK made here for this run and kept
        # nowhere; the cardholder then replaces the PIN at the terminal (CHANGE REFERENCE DATA sent there),
        # so the PIN the cardholder chose never reaches the server ([P002]: knowledge factor at enrolment).
        if app.personalise is not None and self._pin_step(transport) is None:  # before the card is touched
            raise RequestRefused("the wallet would be personalised but nobody can choose its PIN here: give the "
                                 "ADS a cardholder_pin step (or run it through an agent)")
        initial_pin, puk = f"{secrets.randbelow(10**8):08d}", f"{secrets.randbelow(10**8):08d}"
        env = dict(os.environ)
        if app.personalise is not None:
            env.update({app.personalise.pin_env: initial_pin, app.personalise.puk_env: puk})
        def blocks(package: str, done: int, total: int) -> None:
            if self.progress is not None and (done == total or done % LOAD_PROGRESS_EVERY == 0):
                self.progress(f"    LOAD {package}: block {done}/{total}")

        options = DeployOptions(keys=self._keys(kms), after_step=after, env=env, progress=blocks,
                                wallet_db=self.system.folder / "wallet.db")
        with Inventory(self.system.inventory_url, station=f"scms:{self.request_id}") as inventory:
            deployer = Deployer(self.project, profile, transport, inventory, None, options=options)
            try:
                result = deployer.run()
            except (CardCryptogramError, AuthenticationError) as exc:
                self.db.count_auth_failure(cin)
                self._record("mutual authentication", "failed", str(exc))
                raise
        for step in result.performed:
            if step.action == "personalise":  # the instance the deploy personalised
                self._cardholder_pin(transport, step.aid, initial_pin, puk)
        life = result.registry.isd.state if result.registry.isd is not None else "SECURED"
        if life in ("OP_READY", "INITIALIZED"):  # issued: the card's life cycle goes on to SECURED ([GPCS] 5.1.1)
            gp = self._authenticated(kms, transport, cin)
            for state in ("INITIALIZED", "SECURED")[1 if life == "INITIALIZED" else 0:]:
                gp.set_card_life_cycle(state)
            self._record("card life cycle", "ok", f"{life} -> SECURED")
            life = "SECURED"
        self.db.upsert_card(cin, life)
        return f"install {app.name}: {len(result.performed)} steps done, card {life}"
