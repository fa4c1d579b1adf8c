"""Post-issuance deployment of a card profile ([P000]): authenticate, read the card's identity (CPLC) and
contents (GET STATUS), load what is missing in dependency order, install the instances, personalise the
wallet, and record every step in the card inventory.

Personalisation is the application's own (cardsuite.deploy.personalisers, found by the profile's
``[personalise]`` kind): the wallet's is write-ahead, the issuer's database committing the card before
PERSONALISE is sent, so a deploy stopped anywhere is finished by the next (cardsuite.wallet.personaliser).

Key rotation: a key profile with ``rotate_to`` (issuer keys) makes the first step of the plan a PUT KEY of the
issuer keys in place of the transport keys the card came with, then a new session with the issuer keys; the
inventory records the card's key version and which set it is (``rotating`` while the PUT KEY's outcome is not
known). A run after a crash finds the card's keys without spending tries: the key versions the card lists
(GET DATA 00E0, no authentication), the record, then ONE INITIALIZE UPDATE whose card cryptogram is checked
on the host against both key sets (GlobalPlatform.open_with_any).

Idempotent by construction: the plan is made from what the card says it holds, so a deploy interrupted
anywhere (power lost, reader pulled, a failing step) is finished by running it again; nothing is loaded
or installed twice. ``plan_only`` stops after reading the card and returns the plan (``render_plan``); it
writes nothing, neither to the inventory nor to the issuer's database.

The library never prints: progress and step outcomes go to callbacks the CLI or a task provides.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from cardsuite import settings
from cardsuite.apdu import ResponseAPDU
from cardsuite.codec import HexError, parse_hex
from cardsuite.deploy.inventory import Inventory
from cardsuite.deploy.personalisers import Personaliser, personaliser_for
from cardsuite.deploy.profiles import AppProfile, CardProfile, read_env
from cardsuite.errors import CardsuiteError, ConfigurationError
from cardsuite.gp.client import (
    ISD_AID,
    CardContents,
    CardManagerError,
    Cplc,
    GlobalPlatform,
    GPError,
    LoadFile,
    PartRefused,
)
from cardsuite.gp.guard import BrickGuard
from cardsuite.gp.keys import KeyChoice
from cardsuite.gp.scp import LEVELS, KeySet
from cardsuite.project import Project
from cardsuite.settings import ENV_ANT_JAVACARD, ENV_JC_HOME
from cardsuite.tooling.cap import Cap, read_cap
from cardsuite.tooling.manifest import ImportCycleError, Manifest, PackageSpec, import_order, load_manifest
from cardsuite.transport.base import Transport

log = logging.getLogger(__name__)

PLATFORM_RID = bytes.fromhex("A000000062")  # java.*, javacard.*, javacardx.*: on every card already
TEMPLATES = Path(__file__).parent / "templates"


class DeployError(CardsuiteError):
    """A deploy that cannot go on; the message says what is missing and how to get it."""


class DeployInterrupted(CardsuiteError):
    """Raised by a ``before_step`` hook (tests, an operator's stop) to stop a deploy between steps."""


# ---------------------------------------------------------------- what the profile needs


@dataclass(frozen=True)
class PackageNeed:
    """A load file the profile needs: from the manifest (by name) or a CAP file (by path)."""

    name: str
    aid: bytes
    applets: tuple[bytes, ...]
    imports: tuple[bytes, ...]
    cap_candidates: tuple[Path, ...]
    spec: PackageSpec | None = None

    @property
    def cap_path(self) -> Path | None:
        return next((p for p in self.cap_candidates if p.is_file()), None)

    def read(self, reader: Callable[[Path], Cap] = read_cap) -> Cap:
        path = self.cap_path
        if path is None:
            looked = ", ".join(str(p) for p in self.cap_candidates)
            how = (f"build it with the Oracle Java Card SDK: {ENV_JC_HOME}=<kit> {ENV_ANT_JAVACARD}=<jar> "
                   "invoke build" if self.spec is not None else "give the path of an existing CAP file")
            raise DeployError(f"the CAP file of package {self.name} ({self.aid.hex().upper()}) is missing "
                              f"(looked for {looked}); {how}")
        cap = reader(path)
        if cap.package_aid != self.aid:
            raise DeployError(f"{path} holds package {cap.package_aid.hex().upper()}, not {self.name} "
                              f"({self.aid.hex().upper()})")
        return cap


@dataclass(frozen=True)
class InstanceNeed:
    app: AppProfile
    package: PackageNeed
    applet: bytes
    instance: bytes
    params: bytes = field(repr=False)


def cap_search_path(project: Project) -> tuple[Path, ...]:
    """build/cap first (a fresh build), then the committed fixtures (CI has no SDK)."""
    return (project.cap_dir, project.root / "tests" / "fixtures" / "caps")


def _package_from_manifest(project: Project, manifest: Manifest, spec: PackageSpec) -> PackageNeed:
    imports = tuple(manifest.package(name).aid for name in spec.imports)
    return PackageNeed(spec.name, spec.aid, tuple(a.aid for a in spec.applets), imports,
                       tuple(d / f"{spec.name}.cap" for d in cap_search_path(project)), spec)


def _package_from_cap(path: Path) -> PackageNeed:
    if not path.is_file():
        raise DeployError(f"the CAP file {path} does not exist")
    cap = read_cap(path)
    imports = tuple(p.aid for p in cap.imports if not p.aid.startswith(PLATFORM_RID))
    return PackageNeed(path.stem, cap.package_aid, tuple(cap.applet_aids), imports, (path,))


class Requirements:
    """The packages (in load order) and instances a profile asks for."""

    def __init__(self, project: Project, profile: CardProfile, env: Mapping[str, str] | None = None) -> None:
        self.project = project
        self.manifest: Manifest = load_manifest(project.manifest)  # once: a parse costs ~0.6 ms (2026-12-03)
        self.env = os.environ if env is None else env
        self._packages: dict[bytes, PackageNeed] = {}
        for ref in profile.packages:
            self._add(self._resolve(ref, profile.path))
        self.instances = [self._instance(app) for app in profile.applications]
        self.packages = self._load_order()
        self._manifest_aids = frozenset(p.aid for p in self.manifest.packages)

    def manages(self, aid: bytes) -> bool:
        """A load file is the deploy's business when the profile asks for it or the manifest builds it. Anything
        else a card lists is card-resident (real cards list the card manager's own Security Domain package,
        A0000001515350, in GET STATUS, [GPCS] 11.4.2): present, never loaded, deleted or counted as missing."""
        return aid in self._packages or aid in self._manifest_aids

    def resident(self, registry: CardContents) -> list[LoadFile]:
        """The card's load files that are not the deploy's business (see ``manages``)."""
        return [f for f in registry.load_files if not self.manages(f.aid)]

    def _resolve(self, ref: str, base: Path) -> PackageNeed:
        if ref.endswith(".cap") or "/" in ref:
            return _package_from_cap((base.parent / ref).resolve())
        try:
            return _package_from_manifest(self.project, self.manifest, self.manifest.package(ref))
        except ConfigurationError:
            names = ", ".join(p.name for p in self.manifest.packages)
            raise DeployError(f"{base}: package {ref!r} is neither a CAP file path nor a manifest package "
                              f"({names})") from None

    def _add(self, need: PackageNeed) -> PackageNeed:
        known = self._packages.setdefault(need.aid, need)
        for aid in need.imports:  # a suite library imported by a package comes along
            if aid not in self._packages:
                spec = next((p for p in self.manifest.packages if p.aid == aid), None)
                if spec is not None:
                    self._add(_package_from_manifest(self.project, self.manifest, spec))
        return known

    def _instance(self, app: AppProfile) -> InstanceNeed:
        package = self._add(self._resolve(app.package, app.source))
        if app.applet is not None:
            if app.applet not in package.applets:
                listed = ", ".join(a.hex().upper() for a in package.applets) or "none (a library)"
                raise DeployError(f"application {app.name}: package {package.name} has no applet "
                                  f"{app.applet.hex().upper()} (its applets: {listed})")
            applet = app.applet
        elif len(package.applets) == 1:
            applet = package.applets[0]
        else:
            raise DeployError(f"application {app.name}: package {package.name} has {len(package.applets)} applets; "
                              "name one with applet = \"AID\"")
        return InstanceNeed(app, package, applet, app.instance or applet, self._params(app, package, applet))

    def _params(self, app: AppProfile, package: PackageNeed, applet: bytes) -> bytes:
        if app.params is None:
            return b""
        if app.params == "manifest":
            if package.spec is None:
                raise DeployError(f"application {app.name}: params = \"manifest\" needs a manifest package")
            return next((a.params for a in package.spec.applets if a.aid == applet), b"")
        if app.params.startswith("env:"):
            text = read_env(app.params[4:], f"the install parameters of {app.name}", self.env)
            try:
                return parse_hex(text, f"${app.params[4:]} (install parameters of {app.name})", secret=True)
            except HexError as exc:
                raise DeployError(str(exc)) from None
        return parse_hex(app.params, f"application {app.name}: params", secret=True)

    def _load_order(self) -> list[PackageNeed]:
        """Imported packages before their importers; otherwise in the profile's order. Imports that are not
        in the profile (the platform's, or already on the card) do not order anything."""
        try:
            aids = import_order(self._packages, lambda aid: [a for a in self._packages[aid].imports
                                                             if a in self._packages])
        except ImportCycleError as exc:
            cycle = " -> ".join(self._packages[aid].name for aid in exc.chain)
            raise DeployError(f"package {self._packages[exc.chain[0]].name} imports itself through a cycle "
                              f"({cycle})") from None
        return [self._packages[aid] for aid in aids]


# ---------------------------------------------------------------- the plan


@dataclass
class Step:
    action: str  # rotate-keys, load, install, secure, personalise
    name: str
    aid: bytes
    done: bool  # already on the card: skipped
    detail: str = ""
    package: PackageNeed | None = None
    instance: InstanceNeed | None = None

    @property
    def aid_hex(self) -> str:
        return self.aid.hex().upper()


@dataclass
class DeployPlan:
    profile: CardProfile
    card: str
    life_cycle: str
    key_source: str
    steps: list[Step]
    registry: CardContents
    resident: list[LoadFile] = field(default_factory=list)  # on the card, not the deploy's (Requirements.manages)

    @property
    def todo(self) -> list[Step]:
        return [s for s in self.steps if not s.done]

    @property
    def managed_on_card(self) -> int:
        """How many of the card's load files are the deploy's (the manifest's or the profile's)."""
        return len(self.registry.load_files) - len(self.resident)


def make_plan(profile: CardProfile, needs: Requirements, registry: CardContents, *, card: str, key_source: str,
              personalised: Mapping[bytes, tuple[bool, str]], rotation: Step | None = None,
              secure: bool = False) -> DeployPlan:
    """``personalised``: what each personalised instance's personaliser says of it (done, detail);
    ``rotation``: the key rotation step, first, when the key profile asks for one; ``secure``: the card's life
    cycle taken on to SECURED after the loads and installs (DeployOptions.secure)."""
    steps: list[Step] = [rotation] if rotation is not None else []
    life = registry.isd.state if registry.isd is not None else "unknown"
    for need in needs.packages:
        present = registry.load_file(need.aid)
        where = need.cap_path
        shown = where.relative_to(needs.project.root) if where and where.is_relative_to(needs.project.root) else where
        detail = "on the card" if present else (f"from {shown}" if where else "CAP file missing")
        steps.append(Step("load", need.name, need.aid, present is not None, detail, package=need))
    for inst in needs.instances:
        app = registry.application(inst.instance)
        detail = f"{app.state} on the card" if app else (
            f"applet {inst.applet.hex().upper()} of {inst.package.name}, {len(inst.params)} bytes of parameters"
            + (f", privileges {', '.join(inst.app.privileges)}" if inst.app.privileges else ""))
        steps.append(Step("install", inst.app.name, inst.instance, app is not None, detail, instance=inst))
    if secure:
        steps.append(Step("secure", "card", registry.isd.aid if registry.isd is not None else ISD_AID,
                          not securing(life), f"{life} -> SECURED" if securing(life) else f"{life} already"))
    for inst in needs.instances:
        if inst.app.personalise is None:
            continue
        done, detail = personalised[inst.instance]
        steps.append(Step("personalise", inst.app.name, inst.instance, done, detail, instance=inst))
    return DeployPlan(profile, card, life, key_source, steps, registry, needs.resident(registry))


def securing(life: str) -> tuple[str, ...]:
    """The SET STATUS that take a card in life cycle ``life`` on to SECURED ([GPCS] 5.1.1: OP_READY ->
    INITIALIZED -> SECURED, one way); none from SECURED or beyond (locked, terminated: left as they are)."""
    return {"OP_READY": ("INITIALIZED", "SECURED"), "INITIALIZED": ("SECURED",)}.get(life, ())


def render_plan(plan: DeployPlan) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template("deploy_plan.txt.j2").render(plan=plan)


# ---------------------------------------------------------------- running it


Progress = Callable[[str, int, int], None]  # package name, blocks done, blocks in all
StepHook = Callable[[Step], None]


@dataclass
class DeployOptions:
    plan_only: bool = False
    retry_auth: bool = False  # the brick guard's explicit override
    wallet_db: Path | None = None
    progress: Progress | None = None
    before_step: StepHook | None = None  # may raise DeployInterrupted
    # in a personalisation step, once the personaliser has read the card and before its first command that
    # changes it: where a write-ahead begun in before_step must be durable (the SCMS's owed PIN step, committed
    # while the card's state is read)
    before_personalising: Callable[[], None] | None = None
    # step, outcome ("ok", "skipped"); for a step done, called inside the inventory's transaction of its event:
    # a writer to the same database may join it (Inventory.current), one commit for both
    after_step: Callable[[Step, str], None] | None = None
    env: Mapping[str, str] | None = None
    keys: KeyChoice | None = None  # a key store's keys (the SCMS's token) in place of the profile's key profile
    authenticated: Callable[[], None] | None = None  # after each secure channel the deploy opens
    # the card as the caller identified it in this flow (its identity, its CPLC when the card gave one, its
    # card data when read), the ISD selected: the deploy does not read them again (the SCMS's ADS: two round
    # trips less)
    identified: tuple[str, Cplc | None, dict[str, str] | None] | None = None
    read_cap: Callable[[Path], Cap] = read_cap  # a server's CapCache.read: the CAPs kept between deploys
    # the card's life cycle taken on to SECURED once its loads and installs are done, before the
    # personalisations (a step of the plan: the SCMS's ADS issues the cards it serves)
    secure: bool = False


@dataclass(frozen=True)
class DeployResult:
    plan: DeployPlan
    performed: list[Step]
    registry: CardContents


class Deployer:
    def __init__(self, project: Project, profile: CardProfile, transport: Transport, inventory: Inventory | None,
                 guard: BrickGuard | None, *, options: DeployOptions | None = None) -> None:
        self.project = project
        self.profile = profile
        self.transport = transport
        self.inventory = inventory
        self.options = options or DeployOptions()
        self.gp = GlobalPlatform(transport, ISD_AID, guard)
        self.card = ""
        self._keys: KeyChoice | None = None  # the key profile's (transport keys when it rotates)
        self._issuer: KeyChoice | None = None  # rotate_to's
        self._current: KeySet | None = None  # the keys the card holds, once known
        self._life = "unknown"  # the card's life cycle as the deploy found it

    # -- the records (none for a plan: reading never writes)
    def _record_card(self, **fields: object) -> None:
        if self.inventory is not None and not self.options.plan_only:
            self.inventory.record_card(self.card, **fields)  # type: ignore[arg-type]

    def _records(self) -> AbstractContextManager[object]:
        """One inventory transaction for the records written inside (write-only: one round trip)."""
        if self.inventory is None or self.options.plan_only:
            return nullcontext()
        return self.inventory.transaction(write_only=True)

    def _record_seen(self, identity: dict[str, object], registry: CardContents, seen: str,
                     started: str | None = None) -> None:
        """The card as identified and read, and the deploy's start when it goes on: one transaction."""
        with self._records():
            self._record_card(**identity, registry=registry)
            self._record_event("seen", "ok", self.profile.name, seen)
            if started is not None:
                self._record_event("deploy", "started", self.profile.name, started)

    def _record_event(self, action: str, outcome: str, target: str | None = None, detail: str | None = None) -> None:
        if self.inventory is not None and not self.options.plan_only:
            self.inventory.record_event(self.card, action, outcome, target, detail)

    @property
    def wallet_db(self) -> Path:
        return self.options.wallet_db or settings.wallet_db(self.options.env)

    # -- the card
    def _identify(self) -> Cplc | None:
        if self.options.identified is not None:
            self.card, cplc, self.gp.known_card_data = self.options.identified
            return cplc
        cplc = self.gp.select_with_cplc()  # before authentication: a card gives its CPLC to anyone
        self.card = cplc.identity if cplc is not None else self.gp.card_identity()
        return cplc

    def _record_keys(self, kvn: int, key_set: str) -> None:
        if self.inventory is not None and not self.options.plan_only:
            self.inventory.record_keys(self.card, kvn, key_set)

    def _authenticate(self) -> None:
        if self.gp.channel is not None:
            return
        assert self._keys is not None
        level = LEVELS[self.profile.level]
        self.gp.select_for_session()
        if self._current is not None:
            self.gp.open_secure_channel(self._current, level, scp=self._keys.scp, force=self.options.retry_auth)
        elif self._issuer is None:
            self.gp.open_secure_channel(self._keys.keys, level, scp=self._keys.scp, force=self.options.retry_auth)
            self._current = self._keys.keys
        else:
            self._authenticate_either(level)
        if self.options.authenticated is not None:
            self.options.authenticated()

    def _authenticate_either(self, level: int) -> None:
        """The card holds the transport keys or, after a rotation (perhaps one that crashed), the issuer
        keys. Which: the key versions it lists without authentication, else the inventory's record; then one
        INITIALIZE UPDATE (for the listed version, or the default key set when nothing tells) answered with
        the version it used, and the card cryptogram checked against both sets on the host."""
        assert self._keys is not None and self._issuer is not None
        transport, issuer = self._keys.keys, self._issuer.keys
        try:
            listed: set[int] | None = {k.version for k in self.gp.key_info()}
        except (GPError, CardManagerError):
            listed = None  # not given without authentication
        record = self.inventory.keys(self.card) if self.inventory is not None else None
        issuer_first = record is not None and record.key_set in ("issuer", "rotating")
        if listed is not None:
            present = [k for k in (issuer, transport) if k.kvn in listed]
            issuer_first = issuer.kvn in listed and (transport.kvn not in listed or issuer_first
                                                     or issuer.kvn != transport.kvn)
            if not present and transport.kvn != 0:
                versions = ", ".join(f"0x{v:02X}" for v in sorted(listed)) or "none"
                raise DeployError(f"the card lists key versions {versions}: neither the transport keys "
                                  f"(0x{transport.kvn:02X}) nor the issuer keys (0x{issuer.kvn:02X}); not trying "
                                  "(every INITIALIZE UPDATE counts)")
            kvn = (issuer if issuer_first else transport).kvn
        else:
            kvn = transport.kvn if transport.kvn == issuer.kvn else 0  # the card says which version it used
        candidates = [issuer, transport] if issuer_first else [transport, issuer]
        self._current = self.gp.open_with_any(candidates, level, scp=self._keys.scp, force=self.options.retry_auth,
                                              kvn=kvn)
        used = self.gp.channel.response.kvn if self.gp.channel is not None else self._current.kvn
        key_set = "issuer" if self._current is issuer else "transport"
        if record is None or (record.kvn, record.key_set) != (used, key_set):
            self._record_keys(used, key_set)
            self._record_event("keys", "ok", key_set, f"the card holds the {key_set} keys, version 0x{used:02X}")

    def _rotation(self) -> Step | None:
        if self._issuer is None:
            return None
        done = self._current is self._issuer.keys
        detail = (f"holds the issuer keys (0x{self._issuer.keys.kvn:02X})" if done else
                  f"PUT KEY of the issuer keys as version 0x{self._issuer.keys.kvn:02X} ({self._issuer.source}) "
                  "in place of the transport keys, then a session with them")
        return Step("rotate-keys", "issuer keys", self.gp.isd or ISD_AID, done, detail)

    def _rotate(self) -> str:
        assert self._issuer is not None
        self._authenticate()
        assert self.gp.channel is not None
        old = self.gp.channel.response.kvn
        new = self._issuer.keys
        self._record_keys(new.kvn, "rotating")  # write-ahead: a crash from here on leaves the outcome open
        stored = self.gp.put_key(new, replace=old)
        self._current = new
        self.gp.end_session()
        self._authenticate()  # the new keys work before anything else is done with them
        self._record_keys(new.kvn, "issuer")
        kcvs = " ".join(k.hex().upper() for k in stored.kcvs)
        return f"key version 0x{old:02X} -> 0x{new.kvn:02X}, key check values {kcvs}"

    def run(self) -> DeployResult:
        """The whole deploy as one flow (Transport.exclusive): no other program's APDU between its steps."""
        with self.transport.exclusive():
            return self._run()

    def _run(self) -> DeployResult:
        needs = Requirements(self.project, self.profile, self.options.env)  # profile errors before the card
        self._keys = self.options.keys or self.profile.keys.resolve(self.options.env)
        if self.options.keys is None and self.profile.keys.rotate_to is not None:
            self._issuer = self.profile.keys.rotate_to.resolve(self.options.env)
        cplc = self._identify()
        identity = {"cplc": cplc.raw if cplc else None, "atr": self.transport.atr, "card_type": self.profile.card_type}
        authenticated = False

        def authenticate() -> None:
            nonlocal authenticated
            self._authenticate()
            authenticated = True

        try:  # the registry's first run goes with EXTERNAL AUTHENTICATE (one round trip)
            registry = self.gp.registry(authenticate=authenticate)
        except CardsuiteError as exc:
            if not authenticated:
                with self._records():
                    self._record_card(**identity)
                    self._record_event("authenticate", "failed", self._keys.source, str(exc))
            raise
        resident = needs.resident(registry)
        self._life = registry.isd.state if registry.isd is not None else "unknown"
        seen = (f"{len(registry.load_files) - len(resident)} packages, {len(registry.applications)} applications"
                + (f", {len(resident)} card-resident load files" if resident else ""))
        try:
            plan = make_plan(self.profile, needs, registry, card=self.card, key_source=self._keys.source,
                             personalised=self._personalised(needs, registry), rotation=self._rotation(),
                             secure=self.options.secure)
        except BaseException:
            self._record_seen(identity, registry, seen)
            raise
        if self.options.plan_only:
            return DeployResult(plan, [], registry)
        self._record_seen(identity, registry, seen, started=f"{len(plan.todo)} of {len(plan.steps)} steps to do")
        performed: list[Step] = []
        # A personalisation changes no registry entry (the application's own data, not its life cycle), and
        # the SELECT of its application ends the card manager's session: the registry is read back before the
        # personalisations at the end, in the session of the loads and installs (none opened for it alone).
        last_change = max((k for k, s in enumerate(plan.steps) if not s.done and s.action != "personalise"),
                          default=-1)
        after: CardContents | None = None
        try:
            index = 0
            while index < len(plan.steps):
                step = plan.steps[index]
                if index > last_change and after is None:
                    after = self._read_back()
                if step.done:
                    if self.options.after_step is not None:
                        self.options.after_step(step, "skipped")
                    index += 1
                    continue
                together = self._together(plan.steps[index:])
                if len(together) > 1:
                    # the registry read back in the same run when nothing but personalisations follow
                    after = self._perform_together(together, performed, index + len(together) > last_change)
                    index += len(together)
                    continue
                if self.options.before_step is not None:
                    self.options.before_step(step)
                self._performed(step, self._perform(step), performed)
                index += 1
            registry = after if after is not None else self._read_back()
        except BaseException as exc:
            self._record_event("deploy", "failed", self.profile.name,
                               f"{type(exc).__name__}: {exc}; run the deploy again to finish")
            raise
        with self._records():
            self._record_card(registry=registry, profile=self.profile.name)
            self._record_event("deploy", "ok", self.profile.name,
                               f"{len(performed)} steps done, {len(plan.steps) - len(plan.todo)} already there")
        return DeployResult(plan, performed, registry)

    def _performed(self, step: Step, detail: str, performed: list[Step]) -> None:
        performed.append(step)
        with self._records():
            self._record_event(step.action, "ok", f"{step.name} {step.aid_hex}", detail)
            if self.options.after_step is not None:
                self.options.after_step(step, "ok")

    def _together(self, steps: Sequence[Step]) -> list[Step]:
        """The loads, installs and SET STATUS to do from the first of ``steps`` on, when the transport sends a
        run of commands in about the time of one (a relay): their commands need 9000 and nothing else from the
        card ([GPCS] 11.5.3, 11.6.3, 11.10.3), so they go in one run (one round trip, not one per step)."""
        if not self.transport.runs_cost_one_round_trip:
            return []
        together = []
        for step in steps:
            if step.done or step.action not in ("load", "install", "secure"):
                break
            together.append(step)
        return together

    def _perform_together(self, steps: list[Step], performed: list[Step], read_back: bool) -> CardContents | None:
        """_perform() of loads, installs and the card's SET STATUS in one run (GlobalPlatform.send_parts). Each
        step is recorded done once the card has answered all its commands with 9000, all in one transaction;
        the first refusal is raised after the steps before it are recorded (the ones after it never reached
        the card). Progress is told per load once it is done. ``read_back``: the registry's GET STATUS go at
        the run's end (one round trip less) and the registry is returned."""
        for step in steps:
            if self.options.before_step is not None:
                self.options.before_step(step)
        self._authenticate()  # the LOAD blocks' size depends on the session's level
        parts, details, loads = [], [], []
        for step in steps:
            if step.action == "load":
                assert step.package is not None
                cap = step.package.read(self.options.read_cap)
                parts.append(self.gp.load_cap_part(cap))
                loads.append((step.package.name, len(parts[-1].commands) - 1))
                details.append(_load_detail(cap, loads[-1][1]))
            elif step.action == "secure":
                parts.append(self.gp.card_life_cycle_part(securing(self._life)))
                loads.append(None)
                details.append(step.detail)
            else:
                assert step.instance is not None
                inst = step.instance
                parts.append(self.gp.install_for_install_part(inst.package.aid, inst.applet, inst.instance,
                                                              privileges=inst.app.privilege_bytes,
                                                              params=inst.params))
                loads.append(None)
                details.append(_install_detail(inst))
        then = self.gp.registry_commands() if read_back else []
        firsts: list[ResponseAPDU] = []
        try:
            firsts = self.gp.send_parts(parts, then)
            done, refused = len(parts), None
        except PartRefused as exc:
            done, refused = exc.done, exc.error
        with self._records():  # the steps one run did: one commit
            for step, detail, load in zip(steps[:done], details, loads, strict=False):
                if load is not None and self.options.progress is not None:
                    self.options.progress(load[0], load[1], load[1])
                self._performed(step, detail, performed)
        if refused is not None:
            raise refused
        return self.gp.registry(firsts=firsts) if read_back else None

    def _read_back(self) -> CardContents:
        """The registry after the deploy's changes (with EXTERNAL AUTHENTICATE's run when no session is open)."""
        return self.gp.registry(authenticate=self._authenticate)

    def _personaliser(self, inst: InstanceNeed) -> Personaliser:
        perso = inst.app.personalise
        assert perso is not None
        env = self.options.env
        return personaliser_for(perso.kind)(
            spec=perso, name=inst.app.name, instance=inst.instance, params=inst.params, chip=self.card,
            simulated=self.profile.card_type == "simulated", database=self.wallet_db,
            secret=lambda name, what: read_env(name, what, env), env=env)

    def _personalised(self, needs: Requirements, registry: CardContents) -> dict[bytes, tuple[bool, str]]:
        """What each personaliser says of its instance; read only for a plan (nothing created or migrated)."""
        found: dict[bytes, tuple[bool, str]] = {}
        for inst in needs.instances:
            if inst.app.personalise is None:
                continue
            installed = registry.application(inst.instance) is not None
            if installed:
                self.gp.end_session()  # the applet's SELECT ends the card manager's session
            found[inst.instance] = self._personaliser(inst).plan(self.transport, installed=installed,
                                                                 read_only=self.options.plan_only)
        return found

    def _perform(self, step: Step) -> str:
        if step.action == "rotate-keys":
            return self._rotate()
        if step.action == "load":
            assert step.package is not None
            return self._load(step.package)
        if step.action == "secure":
            self._authenticate()
            life_cycle = self.gp.card_life_cycle_part(securing(self._life))
            self.gp.send_many(life_cycle.commands, life_cycle.names)  # one run
            return step.detail
        assert step.instance is not None
        if step.action == "install":
            inst = step.instance
            self._authenticate()
            self.gp.install_for_install(inst.package.aid, inst.applet, inst.instance,
                                        privileges=inst.app.privilege_bytes, params=inst.params)
            return _install_detail(inst)
        return self._personalise(step.instance)

    def _load(self, need: PackageNeed) -> str:
        cap = need.read(self.options.read_cap)
        self._authenticate()
        progress = self.options.progress
        blocks = self.gp.load_cap(cap, progress=(lambda d, t: progress(need.name, d, t)) if progress else None)
        return _load_detail(cap, blocks)

    def _personalise(self, inst: InstanceNeed) -> str:
        personaliser = self._personaliser(inst)
        self.gp.end_session()  # selecting the application ends the card manager's secure channel
        return personaliser.personalise(self.transport, before_changes=self.options.before_personalising)


def _load_detail(cap: Cap, blocks: int) -> str:
    return f"{cap.path.name} v{cap.package.version}, {len(cap.load_file())} bytes in {blocks} blocks"


def _install_detail(inst: InstanceNeed) -> str:
    return f"applet {inst.applet.hex().upper()} of {inst.package.name}"
