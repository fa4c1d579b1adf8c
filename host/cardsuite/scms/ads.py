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
resumable. Every APDU exchange goes to the request's record masked by the one rule set (cardsuite.trace), written with
the step it led to (Database.record_step: a server killed mid-request loses no finished step's exchanges).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from cardsuite.apdu import StatusError, verification_tries_left
from cardsuite.codec import parse_aid, parse_hex
from cardsuite.deploy.deployer import Deployer, DeployOptions, Requirements, Step
from cardsuite.deploy.inventory import Inventory, settle_writes
from cardsuite.deploy.profiles import CardProfile, load_app_profile
from cardsuite.errors import CardsuiteError
from cardsuite.gp.client import (
    ISD_AID,
    AuthenticationError,
    CardContents,
    Cplc,
    GlobalPlatform,
)
from cardsuite.gp.keys import KeyChoice, KeyProfile
from cardsuite.gp.scp import LEVELS, CardCryptogramError
from cardsuite.project import Project
from cardsuite.scms.db import Cursor, Database, Lease
from cardsuite.scms.kms import Kms, KmsError, TokenCardKeys, TokenKeySet
from cardsuite.scms.putkey import put_token_keys
from cardsuite.scms.schema import PIN_KEY_LOCK
from cardsuite.scms.system import PIN_KEY, System
from cardsuite.tooling.cap import Cap, read_cap
from cardsuite.trace import Trace, TraceEntry
from cardsuite.transport.base import Transport

ACTIONS = ("install", "remove", "lock", "unlock", "rotate")
LOAD_PROGRESS_EVERY = 8  # blocks between two progress lines to the terminal
MAX_AUTH_FAILURES = 3  # cryptogram or authentication failures before the ADS stops trying a card
PER_COMMAND_USES = ("mac", "encrypt", "decrypt")  # a secure channel's key uses for each command (kms._TokenKeyUses)
ProgressSink = Callable[[str], None]
# the cardholder's PIN step, run where the card is: (wallet instance AID, one-time initial PIN, PUK) -> detail.
# Over the relay it is the agent's (RelayTransport.cardholder_pin); in process the caller's.
CardholderPin = Callable[[bytes, str, str], str]


class RequestRefused(CardsuiteError):
    """The ADS will not serve this request (the reason is the message and the request's record)."""


class PinStepOwed(CardsuiteError):
    """The cardholder's PIN step failed: the instance keeps its one-time PIN, and the next install request
    for the card asks for the PIN again (scms_owed_pins)."""


def _uses(detail: str, uses: int) -> str:
    """An audit row's detail with the uses it counts (one: the detail alone)."""
    if uses == 1:
        return detail
    return f"{detail} ({uses} uses)" if detail else f"{uses} uses"


def target_names(target: str) -> list[str]:
    """A request's applications: one name, or several separated by spaces (an install of several is one
    deploy run, as a card profile's applications are)."""
    return target.split()


def _protocol(key_sets: list[TokenKeySet]) -> int | None:
    """The protocol the card must answer with: the candidates' own (SCP02 for 3DES keys, SCP03 for AES)."""
    protocols = {keys.scp for keys in key_sets}
    return protocols.pop() if len(protocols) == 1 else None


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
    _seq: int = 0  # the request's exchanges, numbered across its steps
    _audit: list[list] = field(default_factory=list)  # [at, actor, operation, label, request, detail, uses]
    _exchanges: list[tuple] = field(default_factory=list)
    _noted: list[tuple] = field(default_factory=list)  # steps to be written with the next one (_note)
    _one_time: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)  # nonce -> PIN, PUK
    _pins_set: list[tuple[str, str]] = field(default_factory=list)  # (CIN, instance): PIN steps done (_cardholder_pin)
    inventory: Inventory | None = None  # the caller's (a serve process's pool), else opened for the request
    read_cap: Callable[[Path], Cap] = read_cap  # the caller's CapCache.read (a serve process's), else from disk
    # the card's identity, CPLC and card data, read by _identify (DeployOptions.identified)
    _identified: tuple[str, Cplc | None, dict[str, str] | None] | None = None
    _opened: Inventory | None = None

    def _inventory(self) -> Inventory:
        """The inventory, opened once for the request (its connection and schema check cost a few ms)."""
        if self.inventory is None:
            self.inventory = self._opened = Inventory(self.system.inventory_url)
        self.inventory.station = f"scms:{self.request_id}"
        return self.inventory

    def _record(self, name: str, outcome: str = "ok", detail: str = "", within: Cursor | None = None) -> None:
        """The step, with the exchanges and key uses since the previous one, in one transaction (``within``:
        the inventory's open one, Database.record_step), and the steps noted before it."""
        self._note(name, outcome, detail)
        self._write_noted(within)

    def _write_noted(self, within: Cursor | None = None) -> None:
        """The steps noted and not written yet, in one transaction (``within``: an open one, joined). Taken
        from the notes first: a transaction that fails took them with it, and the request's failure, written
        next, must not try them again (a refused step refused it too, and the request stayed running)."""
        noted, self._noted = self._noted, []
        with self.db.transaction(write_only=True) if within is None else nullcontext(within) as cur:
            for number, step, done, said, exchanges, audit in noted:
                self.db.record_step(self.request_id, number, step, done, said, exchanges=exchanges, audit=audit,
                                    within=cur)

    def _note(self, name: str, outcome: str = "ok", detail: str = "") -> None:
        """A step that changed nothing on the card (a secure channel opened), with its exchanges and key uses:
        written with the next step, in its commit (a server killed in between loses it, and nothing else)."""
        self._step += 1
        audit = [(*row[:5], _uses(row[5], row[6])) for row in self._audit]
        self._noted.append((self._step, name, outcome, detail, list(self._exchanges), audit))
        self._exchanges.clear()
        self._audit.clear()
        if self.progress is not None:
            self.progress(f"{self._step:2}. {name}: {outcome}{f' ({detail})' if detail else ''}")

    def _on_exchange(self, entry: TraceEntry) -> None:
        self._seq += 1
        self._exchanges.append((self._seq, entry.command, entry.response, entry.sw, entry.seconds))

    def _on_key_use(self, operation: str, label: str, detail: str) -> None:
        """A key use for the audit log; a secure channel's uses per command in a row under one key (the
        C-MAC of each command of a run) are one row that counts them (2026-12-03: 110 rows a post-issuance,
        22 now); any other use (a derivation, a wrap) is a row of its own."""
        last = self._audit[-1] if self._audit else None
        if operation in PER_COMMAND_USES and last is not None and last[2:4] + last[5:6] == [operation, label, detail]:
            last[6] += 1
            return
        self._audit.append([time.time(), f"ads:{self.request_id}", operation, label, self.request_id, detail, 1])

    def run(self, transport: Transport) -> tuple[str, str]:
        request = self.db.request(self.request_id)
        if request is None:
            raise RequestRefused(f"no request {self.request_id}")
        if request.action not in ACTIONS:
            raise RequestRefused(f"action {request.action!r}: valid are {', '.join(ACTIONS)}")
        # a server claims the request before relaying (several servers, one database); an in-process caller here
        claimant = request.claimed_by or f"ads:{os.getpid()}"
        if request.state == "queued" and not self.db.claim_request(self.request_id, claimant):
            raise RequestRefused(f"request {self.request_id} was claimed by another server")
        if request.state not in ("queued", "running"):
            raise RequestRefused(f"request {self.request_id} is {request.state} already")
        self._note("request", "ok", f"{request.action} {request.target or ''} from terminal {request.terminal}")
        transport.trace = Trace(sinks=[self._on_exchange])
        cin = None
        claimed = False
        try:
            with Lease(self.db.url, self.request_id, claimant), self.system.kms(self._on_key_use) as kms, \
                    transport.exclusive():
                cin = self._identify(transport)
                holder = self.db.claim_card(cin, self.request_id)
                if holder is not None:
                    self._record("card claimed", "refused", f"request {holder} is serving {cin}")
                    raise RequestRefused(f"card {cin} is being served by request {holder}: try again after it")
                claimed = True
                # the steps noted so far go with the next step's commit: the reads before that (the owed PIN
                # steps, the card's keys) wait for no commit of theirs
                outcome = self._serve(kms, transport, request.action, request.target or "", cin)
                # the last step, the card free again and the request's end: one commit (one batch), made
                # after the steps' commits behind and waited for here, in the try: any of them refused
                # (after the card's last command) fails the request and frees the card
                with self.db.transaction(write_only=True):
                    self._record("record", "ok", outcome)
                    self._forget_pins_set()
                    self.db.release_card(cin, self.request_id)
                    self.db.finish_request(self.request_id, "done", outcome, cin)
                settle_writes()
        except BaseException as exc:
            reason = str(exc) or type(exc).__name__
            try:  # the commits behind ended first: one refused as well loses its records, and this error is told
                settle_writes()
            except CardsuiteError:
                pass
            if claimed:  # a commit of its own: the card is free even when the records below are refused
                self.db.release_card(cin, self.request_id)  # type: ignore[arg-type]
            with self.db.transaction():  # the last step and the request's end: one commit
                self._record("outcome", "failed", reason)
                self._forget_pins_set()
                self.db.finish_request(self.request_id, "failed", reason, cin)
            raise
        finally:
            transport.trace = None
            if self._opened is not None:
                self._opened.close()
                self.inventory = self._opened = None
        return cin, outcome

    def _identify(self, transport: Transport) -> str:
        gp = GlobalPlatform(transport, ISD_AID)
        cplc = gp.select_with_cplc()  # the SELECT and GET DATA (CPLC, card data) in one run
        # nothing changed on the card: written with the card's claim (run), or with a refusal
        self._note("select card manager", "ok", ISD_AID.hex().upper())
        self._note("card answers", "ok", "FCI")
        cin = cplc.identity if cplc is not None else gp.card_identity()
        self._identified = (cin, cplc, gp.known_card_data)
        card = self.db.card(cin)
        if card is None:
            self._record("card identity", "refused", f"{cin}: unknown to the CMS")
            raise RequestRefused(f"card {cin} is unknown to the CMS: import its order first")
        if card.blacklisted:
            self._record("card identity", "refused", f"{cin}: blacklisted")
            raise RequestRefused(f"card {cin} is blacklisted")
        if card.auth_failures >= MAX_AUTH_FAILURES:
            self._record("card identity", "refused", f"{cin}: {card.auth_failures} authentication failures")
            raise RequestRefused(f"card {cin} failed authentication {card.auth_failures} times: the ADS stops "
                                 "trying it (clear the count after checking its keys)")
        self._note("card identity", "ok", cin)
        return cin

    def _key_sets(self, kms: Kms, cin: str) -> list[TokenKeySet]:
        """The key sets the card may hold, the likelier first: the issuer's after a rotation, both while one
        is in flight (written ahead of PUT KEY), else the keys cards arrive with."""
        card = self.db.card(cin)
        held = card.key_set if card is not None else "transport"
        transport = TokenKeySet(kms, self.system.card_keys.label, self.system.card_keys.kdf, self.system.card_keys.kvn)
        issuer = self._issuer_keys(kms)
        return {"issuer": [issuer], "rotating": [issuer, transport]}.get(held, [transport])

    def _issuer_keys(self, kms: Kms) -> TokenKeySet:
        config = self.system.issuer_keys
        return TokenKeySet(kms, config.label, config.kdf, config.kvn)

    def _keys(self, kms: Kms, cin: str) -> KeyChoice:
        sets = self._key_sets(kms, cin)
        if len(sets) > 1:
            raise RequestRefused(f"card {cin} is in the middle of a key rotation: request rotate again to finish it")
        return KeyChoice(sets[0], f"token {self.system.token}, key {sets[0].label}",  # type: ignore[arg-type]
                         sets[0].scp)

    def _authenticated(self, kms: Kms, transport: Transport, cin: str) -> GlobalPlatform:
        gp = GlobalPlatform(transport, ISD_AID)
        if self._identified is not None:
            gp.known_card_data = self._identified[2]
        gp.select_for_session()
        sets = self._key_sets(kms, cin)
        try:
            # one INITIALIZE UPDATE; the card cryptogram checked against each candidate (no extra try)
            gp.open_with_any(sets, LEVELS["mac"], scp=_protocol(sets), kvn=0)  # type: ignore[arg-type]
        except (CardCryptogramError, AuthenticationError) as exc:
            self.db.count_auth_failure(cin)
            self._record("mutual authentication", "failed", str(exc))
            raise
        self._authenticated_step()
        return gp

    def _authenticated_step(self) -> None:
        self._note("mutual authentication", "ok", "host challenge, card cryptogram (KMS), host cryptogram")

    def _serve(self, kms: Kms, transport: Transport, action: str, target: str, cin: str) -> str:
        apps = catalogue(self.project)
        names = target_names(target)
        unknown = [name for name in names if name not in apps]
        if unknown:
            raise RequestRefused(f"application {unknown[0]!r} is not in the catalogue ({', '.join(apps)})")
        if action == "install":
            if not names:
                raise RequestRefused("install: name an application of the catalogue")
            return self._install(kms, transport, cin, [apps[name] for name in names])
        if action != "rotate" and len(names) != 1:
            raise RequestRefused(f"{action} takes one application of the catalogue, not {len(names)}")
        gp = self._authenticated(kms, transport, cin)
        if action == "rotate":
            return self._rotate(kms, gp, cin)
        registry = gp.registry()
        self._record("actions offered", "ok", f"{len(registry.applications)} applications on the card")
        target = names[0]
        # the instance as the deployer installs it (the profile's, else the manifest's applet)
        aid = Requirements(self.project, self._profile([apps[target]])).instances[0].instance
        if registry.application(aid) is None:
            raise RequestRefused(f"the card has no application {target} ({aid.hex().upper()})")
        self._record("action chosen", "ok", f"{action} {target}")
        if action == "remove":
            gp.delete(aid)
        else:
            gp.set_application_lock(aid, action == "lock")
        self._record("card script", "ok", f"{action} {aid.hex().upper()} under the secure channel")
        gp.select_for_session()
        sets = self._key_sets(kms, cin)
        gp.open_with_any(sets, LEVELS["mac"], scp=_protocol(sets), kvn=0)  # type: ignore[arg-type]
        self._inventory().record_card(cin, registry=gp.registry())
        self._inventory().record_event(cin, action, "ok", target)
        return f"{action} {target}"

    def _pin_step(self, transport: Transport) -> CardholderPin | None:
        return getattr(transport, "cardholder_pin", None) or self.cardholder_pin

    def _one_time_pin(self, kms: Kms, cin: str, nonce: str) -> tuple[str, str]:
        """The one-time PIN and PUK of a personalisation (8 digits each): computed in the token from the card
        and the nonce owed with it (Database.owe_pin), so a re-run finds the same ones, and nobody once the
        nonce is forgotten."""
        if nonce in self._one_time:  # before the deploy and at the PIN step: one token computation
            return self._one_time[nonce]
        context = b"cardholder PIN and PUK\0" + cin.encode() + parse_hex(nonce, "an owed PIN step's nonce", secret=True)
        what = f"one-time PIN and PUK of card {cin}"
        try:
            secret = kms.one_time_secret(PIN_KEY, context, what)
        except KmsError:
            if kms.find(PIN_KEY) is not None:
                raise
            with self.db.transaction() as cur:  # a system made before the key was: made once, by one server
                self.db.serialise(cur, PIN_KEY_LOCK)
                if kms.find(PIN_KEY) is None:
                    kms.generate_mac_key(PIN_KEY)
            secret = kms.one_time_secret(PIN_KEY, context, what)
        self._one_time[nonce] = (f"{int.from_bytes(secret[:8], 'big') % 10**8:08d}",
                                 f"{int.from_bytes(secret[8:], 'big') % 10**8:08d}")
        return self._one_time[nonce]

    def _cardholder_pins(self, kms: Kms, transport: Transport, cin: str, owed: dict[str, str],
                         registry: CardContents) -> None:
        """The PIN step of each instance the card owes one (this run's personalisation, or an earlier run's
        that stopped before its PIN step): the cardholder replaces the one-time PIN at the terminal."""
        for aid_hex, nonce in owed.items():
            aid = parse_aid(aid_hex, "the instance of an owed PIN step")
            if registry.application(aid) is None:  # removed since: its PIN went with it
                self.db.forget_pin(cin, aid_hex)
                continue
            self._cardholder_pin(transport, cin, aid, *self._one_time_pin(kms, cin, nonce))

    def _cardholder_pin(self, transport: Transport, cin: str, aid: bytes, initial_pin: str, puk: str) -> None:
        step = self._pin_step(transport)
        assert step is not None  # checked before the deploy
        try:
            detail = step(aid, initial_pin, puk)
        except CardsuiteError as exc:
            sw = exc.sw if isinstance(exc, StatusError) else None
            if sw is None or verification_tries_left(sw) is None:
                raise PinStepOwed(f"{exc}; the wallet keeps its one-time PIN until the request is run again") from exc
            # the card no longer takes the one-time PIN ([ISO 7816-4] 63Cx: a wrong PIN): the cardholder
            # replaced it in a run whose answer was lost (the one-time PIN has no further use)
            detail = f"chosen before: the card refuses the one-time PIN ({sw:04X})"
        # the step noted, and its nonce forgotten in the request's last commit (_forget_pins_set), not in one of
        # its own just before it: a server lost before that commit leaves the nonce owed, as one lost before
        # the step's own commit would (the next run's PIN step then finds the one-time PIN refused: 63Cx)
        self._note("cardholder PIN", "ok", detail)
        self._pins_set.append((cin, aid.hex().upper()))

    def _forget_pins_set(self) -> None:
        """In the request's last transaction, done or failed: the nonces of the PIN steps done, forgotten (again
        in the failed one when the done one was refused: deleting twice is harmless)."""
        for cin, aid_hex in self._pins_set:
            self.db.forget_pin(cin, aid_hex)

    def _rotate(self, kms: Kms, gp: GlobalPlatform, cin: str) -> str:
        """The issuer's keys, diversified for this card in the token, in place of the keys it holds (PUT KEY);
        written ahead ('rotating') so that a run stopped anywhere is finished by the next rotate."""
        assert gp.channel is not None
        held = gp.channel.keys
        issuer = self._issuer_keys(kms)
        if getattr(held, "label", None) == issuer.label:  # a rotation done before (perhaps not recorded)
            self.db.set_key_set(cin, "issuer")
            return f"rotate: the card holds the issuer keys (0x{issuer.kvn:02X}) already"
        old = gp.channel.response.kvn
        kdd = gp.channel.response.key_diversification_data
        assert issuer.kdf is not None
        new = kms.derive_card_keys(issuer.label, issuer.kdf, kdd, wrappable=True)
        stored = put_token_keys(gp, kms, TokenCardKeys(kms, issuer.label, new["enc"], new["mac"], new["dek"],
                                                       issuer.kvn), issuer.kvn, old,
                                before_send=lambda: self.db.set_key_set(cin, "rotating"))
        self._record("card script", "ok", f"PUT KEY 0x{old:02X} -> 0x{issuer.kvn:02X} (keys wrapped in the token)")
        gp.select_for_session()
        gp.open_secure_channel(issuer, LEVELS["mac"], scp=issuer.scp)  # type: ignore[arg-type]
        self.db.set_key_set(cin, "issuer")
        self._note("mutual authentication", "ok", "with the new keys")
        kcvs = " ".join(k.hex().upper() for k in stored.kcvs)
        return f"rotate: key version 0x{old:02X} -> 0x{issuer.kvn:02X}, key check values {kcvs}"

    def _profile(self, app_paths: list[Path]) -> CardProfile:
        """A card profile of catalogue applications, deployed in one run as `cardsuite deploy` does a card
        profile's, opened with the KMS's keys (DeployOptions.keys: the key profile named here is never read)."""
        keys = KeyProfile(Path(f"token:{self.system.card_keys.label}"))
        return CardProfile(app_paths[0], self.system.card_type, keys, "mac", (),
                           tuple(load_app_profile(path) for path in app_paths))

    def _install(self, kms: Kms, transport: Transport, cin: str, app_paths: list[Path]) -> str:
        profile = self._profile(app_paths)
        personalised = [app.personalise for app in profile.applications if app.personalise is not None]
        owed = self.db.owed_pins(cin)

        secured: list[bool] = []

        def after(step: Step, outcome: str) -> None:
            # a step done: inside the inventory's transaction of its event, joined where both are one database
            shared = self.system.inventory_url == self.system.database_url
            within = self._inventory().current if shared else None
            with self.db.transaction(write_only=True) if within is None else nullcontext(within) as cur:
                self._record(f"{step.action} {step.name}", outcome, step.detail, within=cur)
                if step.action == "secure" and outcome == "ok":  # issued: the CMS says so in the step's commit
                    self.db.upsert_card(cin, "SECURED", within=cur)
                    secured.append(True)

        # Personalisation: the wallet gets a one-time initial PIN and a PUK computed in the token for this card
        # (_one_time_pin); the cardholder then replaces the PIN at the terminal (CHANGE REFERENCE DATA sent
        # there), so the PIN the cardholder chose never reaches the server ([P002]: knowledge factor at
        # enrolment). Until that step is done the card owes it (scms_owed_pins), and the next install asks.
        if (personalised or owed) and self._pin_step(transport) is None:  # before the card is touched
            raise RequestRefused("the wallet would be personalised but nobody can choose its PIN here: give the "
                                 "ADS a cardholder_pin step (or run it through an agent)")
        # the nonce owed already (a personalisation stopped before its PIN step: the same one-time PIN), else new
        nonce = next(iter(owed.values()), None) or secrets.token_hex(16)
        initial_pin, puk = self._one_time_pin(kms, cin, nonce) if personalised else ("", "")
        env = dict(os.environ)
        for personalisation in personalised:
            env.update({personalisation.pin_env: initial_pin, personalisation.puk_env: puk})
        def blocks(package: str, done: int, total: int) -> None:
            if self.progress is not None and (done == total or done % LOAD_PROGRESS_EVERY == 0):
                self.progress(f"    LOAD {package}: block {done}/{total}")

        def before(step: Step) -> None:
            # the steps noted (the secure channel opened) written before the step goes out, not with it: a
            # relay's loads and installs are one long run, and a server lost during it keeps them; ahead of a
            # personalisation, in the same commit, the PIN step it will owe. Committed behind, while the
            # terminal runs the step: the owed PIN step is durable before the personaliser's first change
            # (before_personalising waits for it), not before the wallet's state is read
            personalising = step.action == "personalise"
            if not (self._noted or personalising):
                return
            with self.db.transaction(write_only=True):
                self._write_noted()
                if personalising:
                    self.db.owe_pin(cin, step.aid_hex, nonce, self.request_id)
            if personalising:
                owed.setdefault(step.aid_hex, nonce)

        options = DeployOptions(keys=self._keys(kms, cin), before_step=before, after_step=after, env=env,
                                before_personalising=settle_writes,
                                progress=blocks,
                                wallet_db=self.system.wallet_db, authenticated=self._authenticated_step,
                                identified=self._identified, secure=True, read_cap=self.read_cap)
        deployer = Deployer(self.project, profile, transport, self._inventory(), None, options=options)
        try:
            result = deployer.run()
        except (CardCryptogramError, AuthenticationError) as exc:
            self.db.count_auth_failure(cin)
            self._record("mutual authentication", "failed", str(exc))
            raise
        life = result.registry.isd.state if result.registry.isd is not None else "SECURED"
        if not secured:
            self.db.upsert_card(cin, life)
        self._cardholder_pins(kms, transport, cin, owed, result.registry)
        names = ", ".join(app.name for app in profile.applications)
        return f"install {names}: {len(result.performed)} steps done, card {life}"
