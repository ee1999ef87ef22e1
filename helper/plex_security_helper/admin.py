"""The host admin's commands (``status``, ``bans``, ``ban``, ``unban``): a small client of the local API.

They read the token from the helper's own configuration and talk to the running helper, never
to the database or nftables directly: the helper stays the one writer, and its policy (never
ban loopback, the protected addresses, the allow-list) applies to the admin as to everyone.
Standard library only, so a command answers in a blink.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from .config import Config
from .model import Origin

TIMEOUT = 15.0
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - listening addresses
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class AdminError(Exception):
    """Something the admin must be told in one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


NOT_RUNNING = 3
UNBANNED_KEY = "unbanned"  # the DELETE answer's key (api/bans.py), not the alert kind of that name


def parse_duration(text: str) -> int:
    """Seconds from ``3600``, ``90m``, ``12h``, ``7d`` or ``2w``."""
    raw = text.strip().lower()
    unit = _UNITS.get(raw[-1:], 0)
    number = raw[:-1] if unit else raw
    if not (number.isascii() and number.isdigit()) or len(number) > 9:
        raise ValueError(f"not a duration: {text!r} (seconds, or a number with s, m, h, d or w)")
    return int(number) * (unit or 1)


class LocalApi:
    """The running helper's API at the address its configuration names."""

    def __init__(self, config: Config) -> None:
        host = _WILDCARDS.get(config.api.host, config.api.host)
        with_brackets = f"[{host}]" if ":" in host else host
        self._token = config.api.token
        self._context: ssl.SSLContext | None = None
        scheme = "http"
        if config.api.tls_cert is not None:
            scheme = "https"
            # The helper's own certificate is the only one trusted; the name need not match.
            self._context = ssl.create_default_context(cafile=str(config.api.tls_cert))
            self._context.check_hostname = False
        self.url = f"{scheme}://{with_brackets}:{config.api.port}"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The decoded JSON answer; :class:`AdminError` with the helper's own words otherwise."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - our own URL
        req.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT, context=self._context) as resp:  # noqa: S310
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            raise AdminError(self._explain(err)) from None
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, ConnectionRefusedError | FileNotFoundError):
                raise AdminError(
                    f"the helper is not running: nothing answers on {self.url} (systemctl status plex-security-helper)",
                    NOT_RUNNING,
                ) from None
            if isinstance(reason, ssl.SSLError):
                raise AdminError(f"TLS with {self.url} failed: {reason}", NOT_RUNNING) from None
            raise AdminError(f"cannot reach the helper on {self.url}: {reason}", NOT_RUNNING) from None
        except (TimeoutError, ConnectionError) as err:
            raise AdminError(f"the helper on {self.url} did not answer: {err}", NOT_RUNNING) from None

    @staticmethod
    def _explain(err: urllib.error.HTTPError) -> str:
        try:
            doc = json.loads(err.read())
            message = str(doc.get("message") or doc.get("error"))
        except (ValueError, AttributeError):
            message = err.reason
        if err.code == 401:
            return f"the helper refused this configuration's token ({message}); restart it after editing the token"
        return f"the helper said {err.code}: {message}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, a rule under the headers."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def _when(stamp: Any) -> str:
    if not isinstance(stamp, int | float) or stamp <= 0:
        return "-"
    return dt.datetime.fromtimestamp(stamp).astimezone().strftime("%Y-%m-%d %H:%M")


def span(seconds: float) -> str:
    """``2 d 3 h``, ``5 h 10 min``, ``42 s``: the two largest units."""
    left = max(0, int(seconds))
    parts: list[str] = []
    for name, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if left >= size or (name == "s" and not parts):
            parts.append(f"{left // size} {name}")
            left %= size
    return " ".join(parts[:2])


def format_bans(doc: dict[str, Any]) -> str:
    """``GET /bans`` as a table."""
    mode = f"mode {doc.get('mode')}, backend {doc.get('backend')}"
    bans = doc.get("bans") or []
    if not bans:
        return f"no active bans ({mode})"
    rows = [
        [
            str(b.get("ip")),
            span(float(b.get("remaining_s", 0))),
            str(b.get("origin")),
            str(b.get("offences")),
            "yes" if b.get("enforced") else "pending" if doc.get("enforcing") else "no (monitor)",
            _when(b.get("created")),
            str(b.get("reason", ""))[:60],
        ]
        for b in bans
    ]
    head = ["address", "left", "origin", "offences", "enforced", "since", "reason"]
    return f"{len(bans)} active bans ({mode})\n" + table(head, rows)


def format_status(doc: dict[str, Any], now: float | None = None) -> str:
    """``GET /status`` for a terminal."""
    now = time.time() if now is None else now
    helper, mon = doc.get("helper", {}), doc.get("monitor", {})
    fw, bans, alerts = doc.get("firewall", {}), doc.get("bans", {}), doc.get("alerts", {})
    failed, audit, plex = doc.get("failed_logins", {}), doc.get("audit", {}), doc.get("plex", {})
    rows: list[list[str]] = []
    rows.append(
        [
            "helper",
            f"{helper.get('version')} (API {helper.get('api_version')}),"
            f" up {span(now - float(helper.get('started', now)))}",
        ]
    )
    follow = "following" if mon.get("following") else "NOT following"
    rows.append(["log", f"{follow} {mon.get('log_path')} ({mon.get('watch')})"])
    rows.append(
        [
            "",
            f"{mon.get('lines_processed', 0)} lines, {mon.get('lines_per_minute', 0)}/min,"
            f" last line {_when(mon.get('last_line_time'))}",
        ]
    )
    for key, label in (("refused", "refused"), ("database_notice", "database"), ("error", "error")):
        if mon.get(key):
            rows.append(["", f"{label}: {mon[key]}"])
    if fw.get("available"):
        state = "active" if fw.get("active") else "not loaded" if fw.get("enforcing") else "monitor only"
        rows.append(["firewall", f"{fw.get('backend')}, mode {fw.get('mode')}, {state}"])
        if fw.get("error"):
            rows.append(["", f"error: {fw['error']}"])
    if bans.get("available"):
        origins = ", ".join(f"{n} {o}" for o, n in sorted((bans.get("by_origin") or {}).items()))
        rows.append(
            [
                "bans",
                f"{bans.get('active', 0)} active"
                + (f" ({origins})" if origins else "")
                + f", {bans.get('pending', 0)} pending",
            ]
        )
    rows.append(["alerts", f"{alerts.get('count_24h', 0)} in 24 h, last sequence {alerts.get('last_seq', 0)}"])
    top = ", ".join(f"{t['ip']} ({t['count']})" for t in (failed.get("top") or [])[:3])
    rows.append(
        [
            "logins",
            f"{failed.get('total', 0)} failed in 24 h from {failed.get('addresses', 0)} addresses"
            + (f": {top}" if top else ""),
        ]
    )
    if plex.get("available"):
        claimed = "claimed" if plex.get("claimed") else "NOT claimed"
        rows.append(["plex", f"{plex.get('version')}, {claimed}, remote access {plex.get('remote_access')}"])
    else:
        rows.append(["plex", str(plex.get("reason", "not audited"))])
    if audit.get("available"):
        score = "none (Plex not checked)" if audit.get("score") is None else f"{audit['score']}/100"
        counts = ", ".join(f"{n} {s}" for s, n in (audit.get("counts") or {}).items() if n) or "no open findings"
        rows.append(["audit", f"score {score} ({counts}), run {_when(audit.get('last_run'))}"])
        if audit.get("not_checked"):
            rows.append(["", "not checked: " + ", ".join(audit["not_checked"])])
    else:
        rows.append(["audit", str(audit.get("reason", "no audit yet"))])
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{r[0].ljust(width)}  {r[1]}".rstrip() for r in rows)


def ban_body(ip: str, duration: int | None, reason: str | None) -> dict[str, Any]:
    """The ``POST /bans`` body for an admin's ban (validated here so the error names the argument)."""
    text = ip.strip()
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise AdminError(f"not an address or network: {ip!r}", 2) from None
    body: dict[str, Any] = {"ip": text, "origin": Origin.MANUAL.value}
    if duration is not None:
        body["duration"] = duration
    if reason:
        body["reason"] = reason
    return body


def unbanned_text(doc: dict[str, Any]) -> str:
    """``DELETE /bans/{ip}`` answers ``{UNBANNED_KEY: ban}``: one line for the admin."""
    return f"unbanned {doc[UNBANNED_KEY]['ip']}"


def unban_path(ip: str) -> str:
    """``/api/v1/bans/{target}`` with the target quoted (a network's ``/`` as ``%2F``)."""
    return "/api/v1/bans/" + urllib.parse.quote(ip.strip(), safe="")
