"""Judge HTTP events: failed logins (bursts, slow guessing, spread), probes, scans, floods.

Also exploit attempts, new user locations and password-free access from outside.

Knows nothing of nftables or the database: it takes events and returns facts and alerts.
Real Plex users must never be banned, so benign token-less paths weigh little, and an
address that signed in successfully recently needs far more evidence. Every pattern here is
linear on hostile input and looks at a bounded prefix of the path; every piece of per-source
state is bounded in bytes (paths are kept as hashes, samples are few and short).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..audit.versions import Version, affected_advisories, fix_advice
from ..model import BAN_KINDS, LOCAL_CLASSES, Alert, AlertKind, FailedAuth, HttpEvent, NetClass, Verdict
from ..thresholds import DetectConfig
from .exploits import MAX_EXAMINED, ExploitRule, match_exploit

_AUTH_FAILURES = frozenset({401, 403})
# The rules look at this much of a path, all the parser keeps of it: markers sit at its start (the
# endpoint) or in its first parameters, and padding that pushes them past the first few KB must
# not hide them (a longer path gains an attacker nothing but CPU time, linear in its length).
RULE_SPAN = MAX_EXAMINED

# Paths real clients hit without (valid) tokens: Plexamp's level requests, timeline reports
# of expired sessions, transcoder and metadata polling. CrowdSec's Plex collection allowlists
# the same family. A refusal here reveals nothing to a token guesser worth banning for (the
# token space is far too large), so it is ignored here; hammering them is still a flood.
BENIGN_FAILURE_PATHS = re.compile(
    r"/(?::/(?:timeline|eventsource|websockets|scrobble|progress)"
    r"|video/:/transcode|audio/:/transcode|photo/:/transcode|playQueues|library/metadata/"
    r"|library/streams/\d{1,12}/levels|library/parts/\d{1,12}/[^ ]{0,256}?levels)"
)
# Paths that answer without a token: a success here proves nothing about the client.
_PUBLIC_PATHS = re.compile(r"/(?:identity|web/|favicon)")

# Requests nobody sends to a media server by accident: traversal, injection, admin panels,
# known exploit paths. Each alternative is a literal or a bounded class: linear, no
# backtracking between pieces (the SQL rule is two independent searches, see is_probe).
PROBE_PATTERNS = re.compile(
    r"\.\./|\.\.\\|\.\.(?:%2f|%5c|%252f|%255c)|%2e%2e|\.%2e|%2e\.|%252e|%c0%ae"
    r"|/etc/passwd|%2fetc%2fpasswd|/etc/shadow|%2fetc%2fshadow|/proc/self|%2fproc%2fself|win\.ini|boot\.ini"
    r"|union(?:\s|\+|%20){1,8}(?:all(?:\s|\+|%20){1,8})?select|sleep\(|sleep%28|benchmark\("
    r"|'(?:\s|\+|%20){0,8}or(?:\s|\+|%20)|%27(?:\s|\+|%20){0,8}or"
    r"|<script|%3cscript|javascript:|onerror=|\$\{jndi:|%24%7bjndi"
    r"|/wp-(?:login|admin|content|includes)|xmlrpc\.php|/phpmyadmin|/\.env|/\.git/|/\.aws/|/\.ssh/"
    r"|/cgi-bin/|/boaform|/HNAP1|/actuator|/solr/|/vendor/phpunit|/manager/html|/owa/|/autodiscover"
    r"|/admin(?:/|$|\?)|/console(?:/|$)|/shell|\.php(?:\?|$)|\.aspx?(?:\?|$)|\.jsp(?:\?|$)",
    re.IGNORECASE,
)
_SQL_SELECT = re.compile(r"select(?:\s|\+|%20)", re.IGNORECASE)
_SQL_FROM = re.compile(r"(?:\s|\+|%20)from(?:\s|\+|%20|&|$)", re.IGNORECASE)
# Searches carry free text: "select … from" is a film title there, not an injection.
_SEARCH_PATHS = re.compile(r"/(?:hubs/search|library/search|search)(?:/|\?|$)")


def is_failed_auth(event: HttpEvent) -> bool:
    """A refused, unauthenticated request from a client Plex does not treat as local.

    The class comes only from the joined Request line: a lone Completed line never counts.
    """
    return (
        event.status in _AUTH_FAILURES
        and not event.signed_in
        and event.net_class is not NetClass.UNKNOWN
        and event.net_class not in LOCAL_CLASSES
    )


# Paths up to this long are cached (they repeat: the same endpoints all day); a cache of
# CACHED_PATHS entries of at most this size stays a few megabytes whatever a spray of paths does.
CACHEABLE_PATH = 256
CACHED_PATHS = 16_384


def is_probe(path: str) -> bool:
    """A path that only an attacker or a vulnerability scanner requests."""
    return _probe_cached(path) if len(path) <= CACHEABLE_PATH else _probe(path)


def classify(method: str, path: str) -> tuple[bool, ExploitRule | None]:
    """Whether *path* is a probe, and the exploit shape it has (both bounded, short ones cached)."""
    if len(path) <= CACHEABLE_PATH:
        return _classify_cached(method, path)
    return _probe(path), match_exploit(method, path)


@functools.lru_cache(maxsize=CACHED_PATHS)
def _probe_cached(path: str) -> bool:
    return _probe(path)


@functools.lru_cache(maxsize=CACHED_PATHS)
def _classify_cached(method: str, path: str) -> tuple[bool, ExploitRule | None]:
    return _probe_cached(path), match_exploit(method, path)


def _probe(path: str) -> bool:
    head = path[:RULE_SPAN]
    if PROBE_PATTERNS.search(head) is not None:
        return True
    return (
        _SQL_SELECT.search(head) is not None
        and _SQL_FROM.search(head) is not None
        and _SEARCH_PATHS.match(head) is None
    )


def sanitise_path(path: str, limit: int = 120) -> str:
    """Printable, bounded sample of an attacker-controlled path, safe to show in Home Assistant."""
    head = path[:limit]
    clean = head if head.isprintable() else "".join(ch if ch.isprintable() else "?" for ch in head)
    return clean + ("…" if len(path) > limit else "")


@functools.lru_cache(maxsize=65_536)
def source_key(ip: str) -> str:
    """Windows are per IPv4 address and per IPv6 /64 (one subscriber's prefix)."""
    if ":" in ip:
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return ip


@functools.lru_cache(maxsize=65_536)
def spread_key(ip: str) -> str:
    """The network a spread attack is judged in: IPv4 /24, IPv6 /48 (one site's allocation)."""
    if ":" in ip:
        return str(ipaddress.IPv6Network(f"{ip}/48", strict=False))
    return str(ipaddress.IPv4Network(f"{ip}/24", strict=False))


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


SAMPLES_PER_SOURCE = 5
HOURS = 24
# A private address that Plex calls WAN and that carries this many users is a proxy.
PROXY_USERS = 3


@dataclass(slots=True)
class _Source:
    """What is known of one address (IPv6: one /64).

    Bounded: a few hundred bytes plus windows whose length the thresholds bound.
    """

    failures: deque[float] = field(default_factory=deque)
    probes: deque[float] = field(default_factory=deque)
    minute: deque[float] = field(default_factory=deque)
    misses: dict[int, float] = field(default_factory=dict)  # hash of a distinct 404 path → last time
    slow: list[int] = field(default_factory=lambda: [0] * HOURS)  # failures per hour of the day window
    slow_hour: int = 0  # the newest hour counted in `slow`
    trusted_until: float = 0.0
    quiet_until: dict[str, float] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    last_seen: float = 0.0


@dataclass(slots=True)
class _Network:
    """Failures of one /24 or /48, for the spread rule: member sources and their recent times."""

    members: dict[str, float] = field(default_factory=dict)  # source key → last failure
    failures: deque[float] = field(default_factory=deque)
    quiet_until: float = 0.0
    last_seen: float = 0.0


@dataclass(slots=True)
class Verdicts:
    """What one batch of events produced."""

    failures: list[FailedAuth] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    learned: list[tuple[str, str, float]] = field(default_factory=list)  # (user, network, time)


def make_alert(
    kind: AlertKind,
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
    source: str | None = None,
) -> Alert:
    """The alert a rule raises, with the verdict its kind carries."""
    detail: dict[str, object] = {
        "verdict": Verdict.BAN if kind in BAN_KINDS else Verdict.WATCH,
        "source": source or source_key(ip),
        "sample_paths": samples,
        "window_s": window_s,
        "net_class": net_class,
    }
    detail.update(extra)
    return Alert(kind=kind, ip=ip, time=time, first_seen=first, last_seen=time, count=count, score=score, detail=detail)


class Detector:
    """Sliding-window rules over per-source state; one alert per kind per quiet period."""

    def __init__(self, config: DetectConfig) -> None:
        self._cfg = config
        self._window = float(config.failed_auth_window)
        self._sources: dict[str, _Source] = {}
        self._networks: dict[str, _Network] = {}
        self._user_networks: dict[str, set[str]] = {}
        # Networks (spread keys) where a real user signed in: never banned as a whole.
        self._user_spread: set[str] = set()
        # Private addresses Plex calls WAN (a Docker bridge, a reverse proxy): users seen on each.
        self._private_wan: dict[str, set[str]] = {}
        self._flood_cap = config.flood_per_minute * config.trusted_factor + 1
        # The running Plex build (from the audit), to tell an exploit attempt on an affected build.
        self.plex_version: Version | None = None

    @property
    def tracked_sources(self) -> int:
        """How many sources are tracked right now (bounded by max_tracked_sources)."""
        return len(self._sources)

    def known_networks(self) -> list[tuple[str, str]]:
        """Every (user, network) a signed-in user was seen from (to write into a rebuilt database)."""
        return [(user, net) for user, nets in self._user_networks.items() for net in sorted(nets)]

    def probable_proxies(self) -> list[str]:
        """Private addresses labelled WAN that carry several users: a proxy, never an attacker."""
        return sorted(ip for ip, users in self._private_wan.items() if len(users) >= PROXY_USERS)

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
            self._user_spread.add(spread_key(net.split("/", 1)[0]))
        ordered = sorted(failures, key=lambda f: f[1])
        newest = ordered[-1][1] if ordered else 0.0
        for ip, when in ordered:
            src = self._source(source_key(ip))
            src.last_seen = max(src.last_seen, when)
            self._count_slow(src, when)
            if when >= newest - self._window:
                src.failures.append(when)
        for kind, ip, when, user in alerts:
            if kind == AlertKind.NETWORK_SPREAD:
                network = self._networks.setdefault(spread_key(ip), _Network())
                network.quiet_until = max(network.quiet_until, when + self._window)
                continue
            src = self._source(source_key(ip))
            key = f"{kind}:{user}"
            src.quiet_until[key] = max(src.quiet_until.get(key, 0.0), when + self._quiet(kind))

    def _quiet(self, kind: str) -> float:
        return float(self._cfg.slow_window) if kind == AlertKind.FAILED_LOGIN_SLOW else self._window

    def feed(self, event: HttpEvent, out: Verdicts, probe: bool) -> None:
        """Add one event's consequences to *out* (*probe*: whether its path is a probe, see classify)."""
        if event.via is not None and event.via == event.ip:
            return  # a trusted proxy's own request without a forwarded client: judge nobody
        cls = event.net_class
        if cls in LOCAL_CLASSES:
            return
        ip = event.ip
        public = is_public(ip)
        if not public and cls is NetClass.WAN and event.via is None:
            users = self._private_wan.setdefault(ip, set())
            if event.user and len(users) < PROXY_USERS:
                users.add(event.user)
        if cls is NetClass.ALLOWED_WAN and public:
            self._alert(out, self._source(source_key(ip)), AlertKind.AUTH_BYPASS, event, count=1, extra={})
        src = self._source(source_key(ip))
        now = event.time
        src.last_seen = now
        status = event.status
        path = event.path
        if event.signed_in and status < 400 and event.user and _PUBLIC_PATHS.match(path) is None:
            # A successful signed-in request: this is a real user's address for a day.
            src.trusted_until = now + self._cfg.trust_after_signin
            self._check_location(event, out)
        self._count_rate(src, event, out)
        if probe:
            self._probe(src, event, out)
        elif status == 404 and BENIGN_FAILURE_PATHS.match(path) is None:
            self._scan(src, event, out)
        if is_failed_auth(event) and BENIGN_FAILURE_PATHS.match(path) is None:
            self._failure(src, event, out)

    def exploit(self, event: HttpEvent, rule: ExploitRule, out: Verdicts) -> None:
        """An exploit's request shape (a virtual patch matched): one hit bans its source.

        Critical when the running build is affected by the rule's advisories (the fix is named).
        """
        if event.net_class in LOCAL_CLASSES or (event.via is not None and event.via == event.ip):
            return  # the owner's network, or a loopback pivot: no address of an attacker to judge
        affected = affected_advisories(rule.advisories, self.plex_version) if self.plex_version else []
        extra: dict[str, object] = {
            "rule": rule.id,
            "title": rule.title,
            "advisories": list(rule.advisories),
            "reference": rule.reference,
            "affected": [v.id for v in affected],
            "severity": "critical" if affected else "high",
        }
        if affected:
            extra["fix"] = fix_advice(affected)
        kind = AlertKind.EXPLOIT if rule.verdict is Verdict.BAN else AlertKind.SENSITIVE_REQUEST
        src = self._source(source_key(event.ip))
        self._remember(src, event.path)
        self._alert(out, src, kind, event, count=1, extra=extra)

    def log_injection(self, event: HttpEvent, out: Verdicts, forged: int) -> None:
        """The writer of a /log message that held forged access lines: the writer, nobody else."""
        if not is_public(event.ip) or event.net_class in LOCAL_CLASSES:
            return
        src = self._source(source_key(event.ip))
        self._alert(
            out, src, AlertKind.LOG_INJECTION, event, count=forged, extra={"user": event.user or "", "forged": forged}
        )

    @staticmethod
    def _remember(src: _Source, path: str) -> None:
        if len(src.samples) < SAMPLES_PER_SOURCE:
            sample = sanitise_path(path)
            if sample not in src.samples:
                src.samples.append(sample)

    def _needed(self, src: _Source, now: float, base: float) -> float:
        return base * self._cfg.trusted_factor if now < src.trusted_until else base

    def _failure(self, src: _Source, event: HttpEvent, out: Verdicts) -> None:
        now = event.time
        out.failures.append(FailedAuth(ip=event.ip, time=now, path=sanitise_path(event.path)))
        src.failures.append(now)
        while src.failures and src.failures[0] < now - self._window:
            src.failures.popleft()
        self._remember(src, event.path)
        count = len(src.failures)
        if count >= self._needed(src, now, self._cfg.failed_auth_threshold):
            score = min(100, AlertKind.FAILED_LOGIN_BURST.score + 10 * count)
            self._alert(out, src, AlertKind.FAILED_LOGIN_BURST, event, count=count, score=score, extra={})
        daily = self._count_slow(src, now)
        burst_quiet = src.quiet_until.get(f"{AlertKind.FAILED_LOGIN_BURST}:", 0.0)
        # Slow guessing is what stays below the burst rule: a source the burst rule caught today
        # is already judged.
        recently_burst = burst_quiet > now - self._cfg.slow_window
        if not recently_burst and daily >= self._needed(src, now, self._cfg.slow_failed_auth_threshold):
            self._alert(
                out,
                src,
                AlertKind.FAILED_LOGIN_SLOW,
                event,
                count=daily,
                extra={"window_s": self._cfg.slow_window},
            )
        self._spread(event, out)

    def _count_slow(self, src: _Source, now: float) -> int:
        """Failures in hourly buckets over the slow window: 24 integers, whatever the rate."""
        span = max(1, self._cfg.slow_window // HOURS)
        hour = int(now // span)
        gap = hour - src.slow_hour
        if gap >= HOURS:
            src.slow = [0] * HOURS
        elif gap > 0:
            for h in range(src.slow_hour + 1, hour + 1):
                src.slow[h % HOURS] = 0
        if gap >= 0:
            src.slow_hour = hour
            src.slow[hour % HOURS] += 1
        return sum(src.slow)

    def _spread(self, event: HttpEvent, out: Verdicts) -> None:
        """Failures spread over many addresses of one network: each below the burst rule."""
        key = spread_key(event.ip)
        net = self._networks.get(key)
        if net is None:
            if len(self._networks) >= self._cfg.max_tracked_sources:
                ordered = sorted(self._networks.items(), key=lambda kv: kv[1].last_seen, reverse=True)
                self._networks = dict(ordered[: self._cfg.max_tracked_sources // 2])
            net = self._networks[key] = _Network()
        now = event.time
        net.last_seen = now
        horizon = now - self._window
        net.failures.append(now)
        while net.failures and net.failures[0] < horizon:
            net.failures.popleft()
        member = source_key(event.ip)
        net.members[member] = now
        if len(net.members) > 4 * self._cfg.spread_sources:  # bounded: the quietest go
            for stale in [m for m, t in net.members.items() if t < horizon] or list(net.members)[:1]:
                del net.members[stale]
        live = sum(1 for t in net.members.values() if t >= horizon)
        if live < self._cfg.spread_sources or len(net.failures) < self._cfg.spread_failures:
            return
        if now < net.quiet_until or key in self._user_spread:
            return  # reported already, or a real user signed in from this network: its members only
        net.quiet_until = now + self._window
        out.alerts.append(
            make_alert(
                AlertKind.NETWORK_SPREAD,
                event.ip,
                now,
                net.failures[0],
                count=len(net.failures),
                score=AlertKind.NETWORK_SPREAD.score,
                samples=[sanitise_path(event.path)],
                window_s=int(self._window),
                net_class=event.net_class.value,
                extra={"network": key, "sources": live},
                source=key,
            )
        )

    def _probe(self, src: _Source, event: HttpEvent, out: Verdicts) -> None:
        src.probes.append(event.time)
        while src.probes and src.probes[0] < event.time - self._window:
            src.probes.popleft()
        self._remember(src, event.path)
        if len(src.probes) >= self._cfg.probe_threshold:
            count = len(src.probes)
            score = min(100, AlertKind.PROBE.score + 10 * count)
            self._alert(out, src, AlertKind.PROBE, event, count=count, score=score, extra={})

    def _scan(self, src: _Source, event: HttpEvent, out: Verdicts) -> None:
        """CrowdSec http-probing style: many distinct missing paths within a short leak."""
        horizon = event.time - self._cfg.scan_window
        misses = src.misses
        if len(misses) >= self._cfg.scan_distinct_paths:
            for path_hash in [p for p, t in misses.items() if t < horizon]:
                del misses[path_hash]
        if len(misses) < 4 * self._cfg.scan_distinct_paths:
            misses[hash(event.path[:RULE_SPAN])] = event.time
        self._remember(src, event.path)
        live = sum(1 for t in misses.values() if t >= horizon)
        if live >= self._needed(src, event.time, self._cfg.scan_distinct_paths):
            self._alert(out, src, AlertKind.SCAN, event, count=live, extra={})

    def _count_rate(self, src: _Source, event: HttpEvent, out: Verdicts) -> None:
        minute = src.minute
        minute.append(event.time)
        while minute and minute[0] < event.time - 60:
            minute.popleft()
        count = len(minute)
        if count > self._flood_cap:  # more than any limit needs to know
            minute.popleft()
            count -= 1
        if count > self._cfg.flood_per_minute and count > self._needed(src, event.time, self._cfg.flood_per_minute):
            self._alert(out, src, AlertKind.FLOOD, event, count=len(minute), extra={"per_minute": len(minute)})

    def _check_location(self, event: HttpEvent, out: Verdicts) -> None:
        assert event.user is not None
        if not is_public(event.ip):
            return
        net = user_network(event.ip)
        known = self._user_networks.get(event.user)
        if known is None:
            known = self._user_networks[event.user] = set()
        elif net in known:
            return
        first = not known
        known.add(net)
        self._user_spread.add(spread_key(event.ip))
        out.learned.append((event.user, net, event.time))
        if first:
            return  # the first address a user is seen from is learnt, not reported
        src = self._source(source_key(event.ip))
        self._alert(out, src, AlertKind.NEW_LOCATION, event, count=1, extra={"user": event.user, "network": net})

    def _alert(
        self,
        out: Verdicts,
        src: _Source,
        kind: AlertKind,
        event: HttpEvent,
        *,
        count: int,
        extra: dict[str, object],
        score: int | None = None,
    ) -> None:
        quiet_key = f"{kind}:{extra.get('user', '')}"
        if event.time < src.quiet_until.get(quiet_key, 0.0):
            return
        # One alert per burst and kind: quiet until the window has passed.
        src.quiet_until[quiet_key] = event.time + self._quiet(kind)
        first = {
            AlertKind.FAILED_LOGIN_BURST: src.failures[0] if src.failures else event.time,
            AlertKind.PROBE: src.probes[0] if src.probes else event.time,
            AlertKind.FLOOD: src.minute[0] if src.minute else event.time,
        }.get(kind, event.time)
        if event.via is not None:
            extra = {**extra, "via": event.via}
        out.alerts.append(
            make_alert(
                kind,
                event.ip,
                event.time,
                first,
                count=count,
                score=kind.score if score is None else score,
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
