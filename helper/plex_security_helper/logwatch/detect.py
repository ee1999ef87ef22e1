"""Judge HTTP events: failed logins, probes, scans, floods, new user locations.

Knows nothing of nftables or the database: it takes events and returns facts and alerts.
Real Plex users must never be banned, so benign token-less paths weigh little, and an
address that signed in successfully recently needs far more evidence.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..model import BAN_KINDS, Alert, AlertKind, FailedAuth, Verdict
from ..thresholds import DetectConfig
from .plexlog import LOG_WRITE, HttpEvent, NetClass

# Classes Plex considers local; their 401s are the owner's own devices.
_LOCAL_CLASSES = frozenset({NetClass.LOOPBACK, NetClass.SUBNET, NetClass.ALLOWED_SUBNET})
_AUTH_FAILURES = frozenset({401, 403})

# Paths real clients hit without (valid) tokens: Plexamp's level requests, timeline reports
# of expired sessions, transcoder and metadata polling. CrowdSec's Plex collection allowlists
# the same family. A refusal here reveals nothing to a token guesser worth banning for (the
# token space is far too large), so it is ignored here; hammering them is still a flood.
BENIGN_FAILURE_PATHS = re.compile(
    r"^/(?::/(?:timeline|eventsource|websockets|scrobble|progress)"
    r"|video/:/transcode|audio/:/transcode|photo/:/transcode|playQueues|library/metadata/"
    r"|library/streams/\d+/levels|library/parts/\d+/.*levels)"
)

# Requests nobody sends to a media server by accident: traversal, injection, admin panels,
# known exploit paths (Plex's own /system/proxy CVE-2014-9181 among them).
PROBE_PATTERNS = re.compile(
    r"(?:\.\./|\.\.\\|%2e%2e|\.%2e|%2e\.|%252e|%c0%ae"
    r"|/etc/passwd|/etc/shadow|/proc/self|win\.ini|boot\.ini"
    r"|union(?:\s|\+|%20)+(?:all(?:\s|\+|%20)+)?select|select(?:\s|\+|%20).*from|sleep\(|benchmark\("
    r"|'(?:\s|\+|%20)*or(?:\s|\+|%20)|%27(?:\s|\+|%20)*or"
    r"|<script|%3cscript|javascript:|onerror=|\$\{jndi:"
    r"|/wp-(?:login|admin|content|includes)|xmlrpc\.php|/phpmyadmin|/\.env|/\.git/|/\.aws/|/\.ssh/"
    r"|/cgi-bin/|/boaform|/HNAP1|/actuator|/solr/|/vendor/phpunit|/manager/html|/owa/|/autodiscover"
    r"|/system/proxy|/admin(?:/|$|\?)|/console(?:/|$)|/shell|\.php(?:\?|$)|\.aspx?(?:\?|$)|\.jsp(?:\?|$))",
    re.IGNORECASE,
)


def is_failed_auth(event: HttpEvent) -> bool:
    """A refused, unauthenticated request from a client Plex does not treat as local.

    The class comes only from the joined Request line: a lone Completed line (which a
    signed-in user could forge through ``/log``) never counts.
    """
    return (
        event.status in _AUTH_FAILURES
        and not event.signed_in
        and event.net_class is not NetClass.UNKNOWN
        and event.net_class not in _LOCAL_CLASSES
    )


@functools.lru_cache(maxsize=65_536)
def is_probe(path: str) -> bool:
    """A path that only an attacker or a vulnerability scanner requests (cached: paths repeat)."""
    return PROBE_PATTERNS.search(path) is not None


def sanitise_path(path: str, limit: int = 120) -> str:
    """Printable, bounded sample of an attacker-controlled path, safe to show in Home Assistant."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in path[:limit])
    return clean + ("…" if len(path) > limit else "")


@functools.lru_cache(maxsize=65_536)
def source_key(ip: str) -> str:
    """Windows are per IPv4 address and per IPv6 /64 (one subscriber's prefix)."""
    if ":" in ip:
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return ip


@functools.lru_cache(maxsize=65_536)
def user_network(ip: str) -> str:
    """The network a user's new-location check compares: the /24 or the /64."""
    if ":" in ip:
        return source_key(ip)
    return str(ipaddress.IPv4Network(f"{ip}/24", strict=False))


# Networks that never come from the internet. Explicit rather than `is_global`, which also
# excludes the documentation ranges that stand for internet addresses in tests and demos.
LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
        "::1/128",
        "fe80::/10",
        "fc00::/7",
        "::/128",
    )
)


@functools.lru_cache(maxsize=65_536)
def is_public(ip: str) -> bool:
    """An address that is not loopback, link-local, RFC 1918, CGNAT or ULA."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not any(addr in net for net in LOCAL_NETWORKS if net.version == addr.version)


@dataclass(slots=True)
class _Source:
    failures: deque[float] = field(default_factory=deque)
    probes: deque[float] = field(default_factory=deque)
    minute: deque[float] = field(default_factory=deque)
    misses: dict[str, float] = field(default_factory=dict)  # distinct 404 paths → last time
    trusted_until: float = 0.0
    quiet_until: dict[str, float] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    last_seen: float = 0.0


@dataclass(slots=True)
class Verdicts:
    """What one batch of events produced."""

    failures: list[FailedAuth] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    learned: list[tuple[str, str, float]] = field(default_factory=list)  # (user, network, time)


# A /log message with an encoded line break: an attempt to write whole forged log lines.
_LOG_INJECTION = re.compile(r"^/log(?:/|\?|$).*(?:%0a|%0d|\\n|\\r)", re.IGNORECASE)


def make_alert(
    kind: str,
    ip: str,
    time: float,
    first: float,
    *,
    count: int,
    score: int,
    samples: list[str],
    window_s: int,
    net_class: str,
    extra: dict[str, object],
) -> Alert:
    """The alert a rule raises (shared by the detector and the compiled scan)."""
    detail: dict[str, object] = {
        "verdict": Verdict.BAN if kind in BAN_KINDS else Verdict.WATCH,
        "source": source_key(ip),
        "sample_paths": samples,
        "window_s": window_s,
        "net_class": net_class,
    }
    detail.update(extra)
    return Alert(kind=kind, ip=ip, time=time, first_seen=first, last_seen=time, count=count, score=score, detail=detail)


# Path classes as bits, computed once per distinct path by the compiled scan (_fastscan.c
# uses the same values).
PATH_PROBE = 1
PATH_BENIGN_FAILURE = 2
PATH_LOG_WRITE = 4
PATH_LOG_INJECTION = 8


def path_flags(path: str) -> int:
    """Every class the rules give *path*, as PATH_* bits."""
    return (
        (PATH_PROBE if is_probe(path) else 0)
        | (PATH_BENIGN_FAILURE if BENIGN_FAILURE_PATHS.match(path) else 0)
        | (PATH_LOG_WRITE if LOG_WRITE.match(path) else 0)
        | (PATH_LOG_INJECTION if _LOG_INJECTION.match(path) else 0)
    )


class Detector:
    """Sliding-window rules over per-source state; one alert per kind per quiet period."""

    def __init__(self, config: DetectConfig) -> None:
        self._cfg = config
        self._window = float(config.failed_auth_window)
        self._sources: dict[str, _Source] = {}
        self._user_networks: dict[str, set[str]] = {}

    def _source(self, key: str) -> _Source:
        src = self._sources.get(key)
        if src is None:
            if len(self._sources) >= self._cfg.max_tracked_sources:
                self._expire()
            src = self._sources[key] = _Source()
        return src

    def restore(
        self,
        networks: list[tuple[str, str]],
        failures: list[tuple[str, float]],
        alerts: Sequence[tuple[str, str, float, str]] = (),
    ) -> None:
        """Pick up after a restart.

        Users' known networks, recent failures in their windows, and the quiet period of recent
        alerts (so a burst that was reported is not reported again).
        """
        for user, net in networks:
            self._user_networks.setdefault(user, set()).add(net)
        for ip, when in sorted(failures, key=lambda f: f[1]):
            src = self._source(source_key(ip))
            src.failures.append(when)
            src.last_seen = max(src.last_seen, when)
        for kind, ip, when, user in alerts:
            src = self._source(source_key(ip))
            key = f"{kind}:{user}"
            src.quiet_until[key] = max(src.quiet_until.get(key, 0.0), when + self._window)

    def feed(self, event: HttpEvent, out: Verdicts) -> None:
        """Add one event's consequences to *out*."""
        if event.suspect:
            return  # possibly written by a /log caller: evidence against nobody
        if event.signed_in and _LOG_INJECTION.match(event.path) and is_public(event.ip):
            src = self._source(source_key(event.ip))
            self._alert(out, src, AlertKind.LOG_INJECTION, event, count=1, score=90, extra={"user": event.user or ""})
        if event.net_class in _LOCAL_CLASSES:
            return
        if event.net_class is NetClass.ALLOWED_WAN and is_public(event.ip):
            self._alert(
                out, self._source(source_key(event.ip)), AlertKind.AUTH_BYPASS, event, count=1, score=90, extra={}
            )
        key = source_key(event.ip)
        src = self._source(key)
        src.last_seen = event.time
        now = event.time
        if event.signed_in and event.status < 400:
            # A successful signed-in request: this is a real user's address for a day.
            src.trusted_until = now + self._cfg.trust_after_signin
            if event.user:
                self._check_location(event, out)
        self._count_rate(src, event, out)
        if is_probe(event.path):
            self._probe(src, event, out)
        elif event.status == 404 and not event.signed_in:
            self._scan(src, event, out)
        if is_failed_auth(event):
            self._failure(src, event, out)

    def _remember(self, src: _Source, path: str) -> None:
        if len(src.samples) < 5:
            sample = sanitise_path(path)
            if sample not in src.samples:
                src.samples.append(sample)

    def _failure(self, src: _Source, event: HttpEvent, out: Verdicts) -> None:
        if BENIGN_FAILURE_PATHS.match(event.path):
            return
        out.failures.append(FailedAuth(ip=event.ip, time=event.time, path=sanitise_path(event.path)))
        src.failures.append(event.time)
        while src.failures and src.failures[0] < event.time - self._window:
            src.failures.popleft()
        self._remember(src, event.path)
        needed = float(self._cfg.failed_auth_threshold)
        if event.time < src.trusted_until:
            needed *= self._cfg.trusted_factor
        if len(src.failures) >= needed:
            count = len(src.failures)
            self._alert(
                out, src, AlertKind.FAILED_LOGIN_BURST, event, count=count, score=min(100, 50 + 10 * count), extra={}
            )

    def _probe(self, src: _Source, event: HttpEvent, out: Verdicts) -> None:
        src.probes.append(event.time)
        while src.probes and src.probes[0] < event.time - self._window:
            src.probes.popleft()
        self._remember(src, event.path)
        if len(src.probes) >= self._cfg.probe_threshold:
            count = len(src.probes)
            self._alert(out, src, AlertKind.PROBE, event, count=count, score=min(100, 60 + 10 * count), extra={})

    def _scan(self, src: _Source, event: HttpEvent, out: Verdicts) -> None:
        """CrowdSec http-probing style: many distinct missing paths within a short leak."""
        horizon = event.time - self._cfg.scan_window
        for path in [p for p, t in src.misses.items() if t < horizon]:
            del src.misses[path]
        if len(src.misses) < 1000:
            src.misses[event.path] = event.time
        self._remember(src, event.path)
        if len(src.misses) >= self._cfg.scan_distinct_paths:
            self._alert(out, src, AlertKind.SCAN, event, count=len(src.misses), score=70, extra={})

    def _count_rate(self, src: _Source, event: HttpEvent, out: Verdicts) -> None:
        src.minute.append(event.time)
        while src.minute and src.minute[0] < event.time - 60:
            src.minute.popleft()
        limit = self._cfg.flood_per_minute
        if event.time < src.trusted_until:
            limit *= self._cfg.trusted_factor
        if len(src.minute) > limit:
            self._alert(
                out, src, AlertKind.FLOOD, event, count=len(src.minute), score=60, extra={"per_minute": len(src.minute)}
            )

    def _check_location(self, event: HttpEvent, out: Verdicts) -> None:
        assert event.user is not None
        if not is_public(event.ip):
            return
        net = user_network(event.ip)
        known = self._user_networks.setdefault(event.user, set())
        if net in known:
            return
        first = not known
        known.add(net)
        out.learned.append((event.user, net, event.time))
        if first:
            return  # the first address a user is seen from is learnt, not reported
        src = self._source(source_key(event.ip))
        self._alert(
            out, src, AlertKind.NEW_LOCATION, event, count=1, score=30, extra={"user": event.user, "network": net}
        )

    def _alert(
        self,
        out: Verdicts,
        src: _Source,
        kind: str,
        event: HttpEvent,
        *,
        count: int,
        score: int,
        extra: dict[str, object],
    ) -> None:
        quiet_key = f"{kind}:{extra.get('user', '')}"
        if event.time < src.quiet_until.get(quiet_key, 0.0):
            return
        # One alert per burst and kind: quiet until the window has passed.
        src.quiet_until[quiet_key] = event.time + self._window
        first = {
            "failed_login_burst": src.failures[0] if src.failures else event.time,
            "probe": src.probes[0] if src.probes else event.time,
            "flood": src.minute[0] if src.minute else event.time,
        }.get(kind, event.time)
        out.alerts.append(
            make_alert(
                kind,
                event.ip,
                event.time,
                first,
                count=count,
                score=score,
                samples=list(src.samples),
                window_s=int(self._window),
                net_class=event.net_class.value,
                extra=extra,
            )
        )

    def _expire(self) -> None:
        """Forget the quietest sources, so memory stays bounded under a spray of addresses."""
        keep = self._cfg.max_tracked_sources // 2
        ordered = sorted(self._sources.items(), key=lambda kv: kv[1].last_seen, reverse=True)
        self._sources = dict(ordered[:keep])
