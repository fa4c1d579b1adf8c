"""`cardsuite gp --backend gppro …`: the same subcommand run through GlobalPlatformPro (gp.jar, CARDSUITE_GP_JAR),
for those who trust the tool field loaders know. Keys, the brick guard and the errors are cardsuite's
(cardsuite.gp.gppro); gp.jar talks PC/SC, so the card is a reader (--card vpcd[:N] or reader:NAME).

Two subcommands are refused rather than weakened: put-key of a key set (gp.jar takes new keys only on its command
line, `--lock-enc …`, where every user of the machine sees them in `ps`; a DAP key, being public, goes as its PEM
file's path) and a script (gp.jar is one session per
process: a script's point, one authenticated session, cannot be kept). STORE DATA goes as a DGI file
(`--store-dgi-file`); BER-TLV data would go on gp.jar's command line and is refused for the same reason as keys.
"""

from __future__ import annotations

import argparse
import os
import sys

from cardsuite.cli.common import Connect
from cardsuite.cli.gp_common import (
    SECURITY_LEVELS,
    authentication,
    card_state,
    default_guard_path,
    format_registry,
    install_privileges,
    install_targets,
    read_data_file,
    resolve_path,
)
from cardsuite.codec import parse_aid, parse_hex
from cardsuite.errors import ConfigurationError
from cardsuite.gp.client import privilege_names
from cardsuite.gp.dap import DAP_KEY_VERSION, read_public_key
from cardsuite.gp.gppro import GPPro, gp_modes
from cardsuite.gp.guard import BrickGuard
from cardsuite.gp.scp import KeySet
from cardsuite.settings import ENV_GP_JAR
from cardsuite.tooling.cap import read_cap
from cardsuite.transport.pcsc import PcscTransport

_REFUSED = {
    "put-key": "gp.jar takes new keys only on its command line (--lock-enc/-mac/-dek), where any user sees them in "
               "ps; put keys with the cardsuite backend",
    "script": "a script runs in one authenticated session; gp.jar opens one per process: use the cardsuite backend",
}


def _reader(args: argparse.Namespace, connect: Connect) -> str:
    transport = connect(args)
    if not isinstance(transport, PcscTransport):
        raise ConfigurationError("gp.jar talks to PC/SC readers: give --card vpcd[:N] or --card reader:NAME "
                                 "(the in-process simulator has no reader)")
    return str(transport.reader_spec)


def run_with_gppro(name: str, args: argparse.Namespace, connect: Connect) -> int:
    if name in _REFUSED and not (name == "put-key" and args.dap_key):  # a DAP key is public: its path may show
        raise ConfigurationError(f"gp {name} --backend gppro: {_REFUSED[name]}")
    if not os.environ.get(ENV_GP_JAR):
        raise ConfigurationError(f"--backend gppro needs GlobalPlatformPro: set {ENV_GP_JAR} to a gp.jar")
    if name == "cplc":
        raise ConfigurationError("gp cplc --backend gppro: gp.jar's --info also prints its key variables; "
                                 "use the cardsuite backend (cplc needs no keys)")
    auth = authentication(args)
    reader = _reader(args, connect)
    gppro = GPPro.from_environment(reader=reader, guard=BrickGuard(args.guard_db or default_guard_path()))
    keys, force = auth.choice.keys, args.retry_auth
    session = ["--mode", *gp_modes(int(SECURITY_LEVELS[args.level]))] if args.level != "mac" else []
    if args.s16:
        session.append("--s16")
    if name == "list":
        print(format_registry(gppro.list(keys, force, session)))
    elif name == "load":
        cap = resolve_path(args, args.cap)
        to = ["--to", parse_aid(args.sd, "--sd").hex().upper()] if args.sd else []  # gp --load X --to SD
        if args.dap_key:  # gp signs with the PEM's key itself (a path on its command line, not the key)
            to += ["--dap-key", str(resolve_path(args, args.dap_key))]
            to += ["--dap-domain", parse_aid(args.dap_sd, "--dap-sd").hex().upper()] if args.dap_sd else []
        gppro.load(cap, keys, force, session + to, progress=_progress)
        print(f"loaded {read_cap(cap).package_aid.hex().upper()} (gp.jar)")
        if args.install:
            for applet in read_cap(cap).applet_aids:
                gppro.install(cap, keys, applet=applet, params=_params(args), privileges=_privilege_names(args),
                              force=force, options=session, loaded=True)
                print(f"installed {applet.hex().upper()} (gp.jar)")
    elif name == "install":
        package, applets, instance = install_targets(args)
        cap = resolve_path(args, args.cap) if args.cap else None
        for applet in applets:
            gppro.install(cap, keys, package=package, applet=applet, instance=instance, params=_params(args),
                          privileges=_privilege_names(args), force=force, options=session)
            print(f"installed {(instance or applet).hex().upper()} (gp.jar)")
    elif name == "delete":
        aid = parse_aid(args.aid, "AID")
        gppro.delete(aid, keys, related=args.related, force=force, options=session)
        print(f"deleted {aid.hex().upper()} (gp.jar)")
    elif name in ("lock", "unlock"):
        aid = parse_aid(args.aid, "AID")
        gppro.set_application_lock(aid, name == "lock", keys, force, options=session)
        print(f"{name}ed {aid.hex().upper()} (gp.jar)")
    elif name == "make-default":
        aid = parse_aid(args.aid, "AID")
        gppro.run(["--make-default", aid.hex().upper(), *session], keys, force, "gp.jar --make-default")
        print(f"{aid.hex().upper()} is the default selected application (gp.jar)")
    elif name == "card-state":
        state = card_state(args)
        gppro.set_card_life_cycle(state, keys, force, options=session)
        print(f"card life cycle set to {state} (gp.jar)")
    elif name == "store-data":
        _store_data(gppro, args, keys, force, session)
    elif name == "put-key":  # --dap-key: the selected domain's DAP verification key (gp -c SD --put-key PEM)
        public = resolve_path(args, args.dap_key)
        read_public_key(public)  # an RSA-1024 public key (or a private key's public half), checked first
        domain = parse_aid(args.isd, "--isd").hex().upper()
        replace = ["--replace-key" if args.replace is not None else "--put-key", str(public)]
        gppro.run(["-c", domain, *replace, "--new-keyver", f"0x{DAP_KEY_VERSION:02X}", *session], keys, force,
                  "gp.jar --put-key")
        print(f"put the DAP verification key as version 0x{DAP_KEY_VERSION:02X} of {domain} (gp.jar)")
    return 0


def _params(args: argparse.Namespace) -> bytes:
    return parse_hex(args.params, "--params", secret=True) if args.params else b""


def _privilege_names(args: argparse.Namespace) -> list[str]:
    return privilege_names(install_privileges(args))


def _progress(done: int, total: int) -> None:
    end = "\n" if done == total else ""
    print(f"\rLOAD {done}/{total} blocks (gp.jar)", end=end, file=sys.stderr, flush=True)


def _store_data(gppro: GPPro, args: argparse.Namespace, keys: KeySet, force: bool, session: list[str]) -> None:
    if args.format != "dgi":
        raise ConfigurationError(f"gp store-data --format {args.format} --backend gppro: gp.jar takes such data only "
                                 "on its command line (--store-data HEX), visible in ps; use --format dgi (a file) "
                                 "or the cardsuite backend")
    path = resolve_path(args, args.file)
    app = parse_aid(args.app, "--app") if args.app else None
    gppro.store_dgi_file(read_data_file(path), keys, app=app, force=force, options=session)
    print(f"stored {path.name} (DGI) to {app.hex().upper() if app else 'the security domain'} (gp.jar)")
