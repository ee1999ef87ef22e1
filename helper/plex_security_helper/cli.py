"""Command line: ``plex-security-helper init | serve | scan | audit | fail2ban-config | demo-plex | demo-traffic``."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    import logging

    from .config import Config

# Each command imports what it needs when it runs: `scan` of a big log is judged in well under
# a second, and importing the web server, the audits and the demo first would double that.

DEFAULT_CONFIG = Path("/etc/plex-security/helper.toml")
FAIL2BAN_FILES = ("filter.d/plex-security.conf", "jail.d/plex-security.conf")


def _cmd_init(args: argparse.Namespace) -> int:
    from .config import write_new_config  # noqa: PLC0415
    from .layouts import detect as detect_layouts  # noqa: PLC0415
    from .tlscert import TlsError, fingerprint, make_self_signed  # noqa: PLC0415

    path: Path = args.config
    if path.exists():
        print(f"error: {path} exists; not overwriting it", file=sys.stderr)
        return 1
    log_path = args.log_path
    if log_path is None:
        layouts = detect_layouts(docker_socket=args.docker_socket)
        if layouts:
            log_path = str(layouts[0].log_path)
            others = ", ".join(f"{lay.kind} ({lay.plex_dir})" for lay in layouts[1:])
            print(f"found Plex ({layouts[0].kind}): {layouts[0].plex_dir}" + (f"; also {others}" if others else ""))
        else:
            print("no Plex data folder found; set monitor.log_path in the file (or pass --log-path)")
    database = args.database or (
        "/var/lib/plex-security/plex-security.db" if path.parent == Path("/etc/plex-security") else None
    )
    try:
        token = write_new_config(path, log_path=log_path, host=args.host, database=database)
    except OSError as err:
        print(f"error: cannot write {path}: {err.strerror}", file=sys.stderr)
        return 1
    admin = os.environ.get("SSH_CLIENT", "").split(" ")[0]
    try:
        admin = str(ipaddress.ip_address(admin)) if admin else ""
    except ValueError:
        admin = ""
    if admin:
        # The admin's own SSH session must never be cut off by a ban.
        text = path.read_text(encoding="utf-8").replace("protect = []", f'protect = ["{admin}"]', 1)
        path.write_text(text, encoding="utf-8")
        print(f"protected your SSH client address {admin} from bans (firewall.protect)")
    print(f"wrote {path} (mode 0600)")
    # The only time the token is shown: the user pastes it into Home Assistant.
    print(f"API token for Home Assistant: {token}")
    if args.tls:
        cert, key = path.with_name("helper-cert.pem"), path.with_name("helper-key.pem")
        try:
            make_self_signed(cert, key, sorted({args.host, "127.0.0.1", "localhost"}))
        except TlsError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        text = path.read_text(encoding="utf-8").replace(
            "\n[monitor]", f'tls_cert = "{cert.name}"\ntls_key = "{key.name}"\n\n[monitor]', 1
        )
        path.write_text(text, encoding="utf-8")
        print(f"TLS certificate {cert}; SHA-256 fingerprint (Home Assistant asks you to confirm it):")
        print(f"  {fingerprint(cert)}")
    return 0


def _quiet_bad_requests(record: logging.LogRecord) -> bool:
    import logging  # noqa: PLC0415

    """Malformed HTTP from a client is its problem: one line, no traceback for it to fill the log with."""
    if record.exc_info and type(record.exc_info[1]).__name__ in (
        "BadHttpMessage",
        "BadStatusLine",
        "LineTooLong",
        "InvalidHeader",
        "BadHttpMethod",
    ):
        record.msg = f"malformed HTTP request refused: {record.exc_info[1]}".replace("\n", " ")[:300]
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
    return True


def _read_config(path: Path) -> Config | None:
    """The configuration, or None after saying on stderr why it cannot be used."""
    from .config import ConfigError, load_config  # noqa: PLC0415

    try:
        return load_config(path)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return None


def _cmd_serve(args: argparse.Namespace) -> int:
    import logging  # noqa: PLC0415

    from aiohttp import web  # noqa: PLC0415

    from .app import create_app  # noqa: PLC0415
    from .plex.geo import GeoDataError  # noqa: PLC0415
    from .tlscert import TlsError, server_context  # noqa: PLC0415

    config = _read_config(args.config)
    if config is None:
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(_quiet_bad_requests)
    context = None
    if config.api.tls_cert and config.api.tls_key:
        try:
            context = server_context(config.api.tls_cert, config.api.tls_key)
        except TlsError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    try:
        app = create_app(config)
    except GeoDataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    web.run_app(
        app,
        host=config.api.host,
        port=config.api.port,
        print=lambda msg: logging.getLogger(__name__).info(
            "plex-security-helper %s listening on %s:%s", __version__, config.api.host, config.api.port
        ),
        handle_signals=True,
        shutdown_timeout=5.0,
        ssl_context=context,
    )
    return 0


def fail2ban_files(log_path: str | None) -> dict[str, str]:
    """The shipped filter and jail (relative path → text), the jail's logpath set when given."""
    from importlib import resources  # noqa: PLC0415

    data = resources.files("plex_security_helper") / "data" / "fail2ban"
    files = {name: (data / name).read_text(encoding="utf-8") for name in FAIL2BAN_FILES}
    if log_path:
        if "\n" in log_path or "\r" in log_path:
            raise ValueError("the log path must be one line")
        jail = files["jail.d/plex-security.conf"]
        files["jail.d/plex-security.conf"] = (
            "\n".join(
                f"logpath = {log_path} tail" if line.startswith("logpath =") else line for line in jail.splitlines()
            )
            + "\n"
        )
    return files


def _cmd_fail2ban_config(args: argparse.Namespace) -> int:
    try:
        files = fail2ban_files(args.log_path)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.write is None:
        for name, text in files.items():
            print(f"# ---- {name}")
            print(text, end="")
        return 0
    for name, text in files.items():
        target: Path = args.write / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError as err:
            print(f"error: cannot write {target}: {err.strerror}", file=sys.stderr)
            return 1
        print(f"wrote {target}")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415

    from .audit.fixscript import render as render_fix_script  # noqa: PLC0415
    from .audit.runner import Auditor  # noqa: PLC0415
    from .firewall.enforcer import Enforcer  # noqa: PLC0415

    config = _read_config(args.config)
    if config is None:
        return 2
    auditor = Auditor(config.audit, Enforcer(config.firewall))
    report = asyncio.run(auditor.run())
    if args.fix_script is not None:
        try:
            args.fix_script.write_text(render_fix_script(report), encoding="utf-8")
            args.fix_script.chmod(0o700)
        except OSError as err:
            print(f"error: cannot write {args.fix_script}: {err.strerror}", file=sys.stderr)
            return 1
    if args.json:
        json.dump(report.as_json(), sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
        return 0
    doc = report.as_json()
    counts = ", ".join(f"{n} {sev}" for sev, n in doc["counts"].items() if n)
    print(f"security score {doc['score']}/100 ({counts or 'no open findings'})")
    for finding in doc["findings"]:
        mark = f" [accepted: {finding['accepted_reason']}]" if finding["accepted"] else ""
        print(f"{finding['severity']:8} {finding['key']}: {finding['title']}{mark}")
        print(f"         {finding['evidence']}")
    for area, why in doc["not_checked"].items():
        print(f"not checked: {area}: {why}")
    if args.fix_script is not None:
        print(f"remediation script: {args.fix_script} (review it; nothing was changed)")
    return 0


def _cmd_demo_plex(args: argparse.Namespace) -> int:
    from aiohttp import web  # noqa: PLC0415

    from .audit.preferences import read_preferences  # noqa: PLC0415
    from .demo.plexemu import PlexState, create_plex_app  # noqa: PLC0415

    prefs: dict[str, str] = {}
    if args.prefs is not None:
        found, problems = read_preferences(args.prefs)
        if found is None:
            print(f"error: {problems[0].evidence}", file=sys.stderr)
            return 2
        prefs = found
    state = PlexState(
        token=args.token,
        version=args.version,
        claimed=not args.unclaimed,
        prefs=prefs,
        log_path=args.log,
        wan_classes=tuple(args.wan),
    )
    app = create_plex_app(state)
    if args.story:
        import asyncio  # noqa: PLC0415
        import contextlib  # noqa: PLC0415
        from collections.abc import AsyncIterator  # noqa: PLC0415

        from .demo.story import play, prepare_account  # noqa: PLC0415

        prepare_account(state)

        async def story(app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(play(state, args.story_step))
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        app.cleanup_ctx.append(story)
    web.run_app(app, host=args.host, port=args.port, print=None)
    return 0


def _cmd_demo_traffic(args: argparse.Namespace) -> int:
    import contextlib  # noqa: PLC0415
    import random  # noqa: PLC0415

    from .demo.traffic import TrafficWriter  # noqa: PLC0415

    # Demo traffic only needs to look plausible, so a seeded PRNG is right here.
    writer = TrafficWriter(args.log, random.Random(args.seed))  # noqa: S311
    with contextlib.suppress(KeyboardInterrupt):
        writer.run(args.rate, args.duration)
    return 0


PROGRESS_FROM = 4 * 1024 * 1024  # bytes of log after which a terminal shows progress


def _cmd_scan(args: argparse.Namespace) -> int:
    from .logwatch.scan import Progress, scan_files  # noqa: PLC0415
    from .thresholds import DetectConfig  # noqa: PLC0415

    detect = DetectConfig()
    proxies: tuple[str, ...] = ()
    if args.config is not None:
        config = _read_config(args.config)
        if config is None:
            return 2
        detect, proxies = config.detect, config.monitor.trusted_proxies
    missing = [str(p) for p in args.logfiles if not p.is_file()]
    if missing:
        print(f"error: not a readable file: {', '.join(missing)}", file=sys.stderr)
        return 2
    total = sum(p.stat().st_size for p in args.logfiles)
    progress = Progress(total, sys.stderr.write) if sys.stderr.isatty() and total > PROGRESS_FROM else None
    report = scan_files(args.logfiles, detect, trusted_proxies=proxies, progress=progress)
    if progress is not None:
        sys.stderr.write("\n")
    if args.json:
        json.dump(report.as_json(), sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
        print(report.summary(), file=sys.stderr)
        return 0
    doc = report.as_json()
    for row in doc["addresses"]:
        if row["verdict"] == "ok" and not args.all:
            continue
        reasons = ", ".join(row["reasons"]) or "-"
        print(
            f"{row['verdict']:5} {row['ip']:39} failed_auth={row['failed_auth']:<6} "
            f"probes={row['probes']:<5} requests={row['requests']:<7} {reasons}"
        )
    print(report.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="plex-security-helper", description="Watch, audit and protect a Plex Media Server."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="write a default config file with a new API token")
    init.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    init.add_argument("--log-path", help="the Plex Media Server.log to follow (default: detected)")
    init.add_argument("--host", default="127.0.0.1", help="address the API listens on")
    init.add_argument("--database", help="SQLite file (default: next to the config, or /var/lib/plex-security)")
    init.add_argument("--tls", action="store_true", help="serve HTTPS with a new self-signed certificate")
    init.add_argument("--docker-socket", default="/var/run/docker.sock", help="to find a Plex container's folder")
    init.set_defaults(func=_cmd_init)

    serve = sub.add_parser("serve", help="follow the log and serve the API")
    serve.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    serve.add_argument("-v", "--verbose", action="store_true")
    serve.set_defaults(func=_cmd_serve)

    scan = sub.add_parser("scan", help="analyse Plex log files offline and print per-address verdicts")
    scan.add_argument("logfiles", nargs="+", type=Path, metavar="LOGFILE")
    scan.add_argument("--json", action="store_true", help="print exactly one JSON object")
    scan.add_argument("--all", action="store_true", help="also list addresses judged ok")
    scan.add_argument("--config", type=Path, default=None, help="take thresholds from this config")
    scan.set_defaults(func=_cmd_scan)

    f2b = sub.add_parser("fail2ban-config", help="print (or write) the fail2ban filter and jail for Plex")
    f2b.add_argument("--log-path", help="the Plex Media Server.log the jail watches")
    f2b.add_argument("--write", type=Path, metavar="DIR", help="write them under DIR (e.g. /etc/fail2ban)")
    f2b.set_defaults(func=_cmd_fail2ban_config)

    audit = sub.add_parser("audit", help="audit Plex, the host and Docker once and print the findings")
    audit.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    audit.add_argument("--json", action="store_true", help="print exactly one JSON object")
    audit.add_argument("--fix-script", type=Path, metavar="FILE", help="write a remediation script (never run)")
    audit.set_defaults(func=_cmd_audit)

    plex = sub.add_parser("demo-plex", help="serve a small Plex emulator (for the demo and tests)")
    plex.add_argument("--host", default="127.0.0.1")
    plex.add_argument("--port", type=int, default=32400)
    plex.add_argument("--token", required=True)
    plex.add_argument("--version", default="1.43.4.10903-e5521bd8c")
    plex.add_argument("--unclaimed", action="store_true")
    plex.add_argument("--prefs", type=Path, help="a Preferences.xml to serve through /:/prefs")
    plex.add_argument("--log", type=Path, help="append Plex-format access lines for every request")
    plex.add_argument("--wan", action="append", default=[], help="client address the log calls WAN")
    plex.add_argument("--story", action="store_true", help="play the demo's sessions and plex.tv account")
    plex.add_argument("--story-step", type=float, default=15.0, help="seconds between the story's scenes")
    plex.set_defaults(func=_cmd_demo_plex)

    demo = sub.add_parser("demo-traffic", help="append realistic Plex traffic (users and attackers) to a log")
    demo.add_argument("--log", type=Path, required=True)
    demo.add_argument("--rate", type=float, default=4.0, help="requests per second")
    demo.add_argument("--duration", type=float, default=None, help="seconds (default: until interrupted)")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=_cmd_demo_traffic)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
