"""The domain's nouns: the values that cross module boundaries, and the alert vocabulary.

Everything else derives from here: the store's SQL lists, the ban kinds, the OpenAPI enum, the
docs table and (through a test, never an import) the Home Assistant integration's event types.
`logwatch/` and `store.py` both import this module, never each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """What an alert means for its source."""

    BAN = "ban"  # the source is hostile: it is banned (recorded only, in monitor mode)
    WATCH = "watch"  # suspicious, worth a look, never banned for
    INFO = "info"  # a change of state (a ban made or lifted), not a judgement


@dataclass(frozen=True, slots=True)
class KindInfo:
    """What one alert kind means: its verdict, default score and human title."""

    verdict: Verdict
    score: int
    label: str


class AlertKind(StrEnum):
    """Every kind of entry in the alert stream (``/api/v1/alerts``)."""

    FAILED_LOGIN_BURST = "failed_login_burst"
    FAILED_LOGIN_SLOW = "failed_login_slow"
    NETWORK_SPREAD = "network_spread"
    PROBE = "probe"
    EXPLOIT = "exploit"
    SCAN = "scan"
    FLOOD = "flood"
    LOG_INJECTION = "log_injection"
    SENSITIVE_REQUEST = "sensitive_request"
    NEW_LOCATION = "new_location"
    AUTH_BYPASS = "auth_bypass"
    NEW_COUNTRY = "new_country"
    IMPOSSIBLE_TRAVEL = "impossible_travel"
    ACCOUNT_SHARING = "account_sharing"
    HOSTING_STREAM = "hosting_stream"
    NEW_DEVICE = "new_device"
    BANNED = "banned"
    UNBANNED = "unbanned"

    @property
    def info(self) -> KindInfo:
        """Verdict, default score and title of this kind."""
        return KIND_INFO[self]

    @property
    def verdict(self) -> Verdict:
        """Whether this kind bans, watches or informs."""
        return KIND_INFO[self].verdict

    @property
    def score(self) -> int:
        """The score an alert of this kind starts from (rules may raise it with the count)."""
        return KIND_INFO[self].score

    @property
    def label(self) -> str:
        """A short human title (English; Home Assistant translates its own copy)."""
        return KIND_INFO[self].label

    @classmethod
    def with_verdict(cls, verdict: Verdict) -> tuple[AlertKind, ...]:
        """The kinds of one verdict, in declaration order."""
        return tuple(kind for kind in cls if KIND_INFO[kind].verdict is verdict)


KIND_INFO: dict[AlertKind, KindInfo] = {
    AlertKind.FAILED_LOGIN_BURST: KindInfo(Verdict.BAN, 50, "Failed-login burst"),
    AlertKind.FAILED_LOGIN_SLOW: KindInfo(Verdict.BAN, 60, "Slow password guessing"),
    AlertKind.NETWORK_SPREAD: KindInfo(Verdict.BAN, 70, "Attack spread over a network"),
    AlertKind.PROBE: KindInfo(Verdict.BAN, 60, "Vulnerability probe"),
    AlertKind.EXPLOIT: KindInfo(Verdict.BAN, 95, "Exploit attempt"),
    AlertKind.SCAN: KindInfo(Verdict.BAN, 70, "Path scan"),
    AlertKind.FLOOD: KindInfo(Verdict.BAN, 60, "Request flood"),
    AlertKind.LOG_INJECTION: KindInfo(Verdict.BAN, 90, "Forged log lines"),
    AlertKind.SENSITIVE_REQUEST: KindInfo(Verdict.WATCH, 50, "Sensitive endpoint from the internet"),
    AlertKind.NEW_LOCATION: KindInfo(Verdict.WATCH, 30, "User from a new location"),
    AlertKind.AUTH_BYPASS: KindInfo(Verdict.WATCH, 90, "Password-free access from the internet"),
    # Signed-in users: never banned for (the owner decides; stopping a stream is an action).
    AlertKind.NEW_COUNTRY: KindInfo(Verdict.WATCH, 40, "User streaming from a new country"),
    AlertKind.IMPOSSIBLE_TRAVEL: KindInfo(Verdict.WATCH, 70, "Impossible travel"),
    AlertKind.ACCOUNT_SHARING: KindInfo(Verdict.WATCH, 50, "Too many remote streams for one user"),
    AlertKind.HOSTING_STREAM: KindInfo(Verdict.WATCH, 50, "Stream from a hosting network"),
    AlertKind.NEW_DEVICE: KindInfo(Verdict.WATCH, 40, "New device on the account"),
    AlertKind.BANNED: KindInfo(Verdict.INFO, 0, "Banned"),
    AlertKind.UNBANNED: KindInfo(Verdict.INFO, 0, "Unbanned"),
}
BAN_KINDS = frozenset(AlertKind.with_verdict(Verdict.BAN))


class Origin(StrEnum):
    """Who made a ban."""

    DETECTOR = "detector"
    MANUAL = "manual"
    HOME_ASSISTANT = "home_assistant"
    # Decisions streamed from CrowdSec's Local API: the fleet's (other machines, cscli) and the
    # community blocklist's (LAPI origins "CAPI" and "lists"). Enforced in their own sets.
    FLEET = "crowdsec"
    COMMUNITY = "capi"


# The origins an API caller may claim (the detector's are the helper's own).
CALLER_ORIGINS = (Origin.MANUAL.value, Origin.HOME_ASSISTANT.value)
# The origins of bans this helper makes itself (recorded, enforced and pushed to the fleet).
LOCAL_ORIGINS = (Origin.DETECTOR.value, *CALLER_ORIGINS)


class NetClass(StrEnum):
    """How Plex classified the client network (the bracket's ``(…)`` on Request lines)."""

    WAN = "WAN"
    SUBNET = "Subnet"
    LOOPBACK = "Loopback"
    ALLOWED_SUBNET = "Allowed Network (Subnet)"
    ALLOWED_WAN = "Allowed Network (WAN)"
    UNKNOWN = "Unknown"


# Classes Plex considers local; their 401s are the owner's own devices.
LOCAL_CLASSES = frozenset({NetClass.LOOPBACK, NetClass.SUBNET, NetClass.ALLOWED_SUBNET})


@dataclass(slots=True)
class HttpEvent:
    """A finished HTTP request: a Completed line joined with its Request line when seen.

    ``ip`` is the client judged: the bracket address, or the forwarded address when the
    bracket is a trusted proxy (``via`` then names the proxy; ``via == ip`` means the proxy
    forwarded no usable address, and nobody is judged).
    """

    time: float
    ip: str
    port: int
    net_class: NetClass
    method: str
    path: str
    status: int
    request_id: str | None
    user: str | None
    signed_in: bool
    via: str | None = None


@dataclass(frozen=True, slots=True)
class FailedAuth:
    """One unauthenticated request from outside that the server refused."""

    ip: str
    time: float
    path: str


@dataclass(slots=True)
class AddressTally:
    """What one address did within one batch; added to its running totals on commit."""

    first_seen: float
    last_seen: float
    requests: int = 0
    failed_auth: int = 0
    probes: int = 0
    alerts: int = 0
    last_alert: str | None = None

    def add(self, other: AddressTally) -> None:
        """Fold *other* (a later batch) into this running total."""
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        self.requests += other.requests
        self.failed_auth += other.failed_auth
        self.probes += other.probes
        self.alerts += other.alerts
        self.last_alert = other.last_alert or self.last_alert


@dataclass(frozen=True, slots=True)
class Alert:
    """Something the detector judged suspicious; ``seq`` is set once stored."""

    kind: str
    ip: str
    time: float
    first_seen: float
    last_seen: float
    count: int
    score: int
    detail: dict[str, Any]
    seq: int = 0

    @property
    def verdict(self) -> str:
        """``ban``, ``watch`` or ``info``, as recorded with the alert."""
        return str(self.detail.get("verdict", ""))

    def as_json(self) -> dict[str, Any]:
        """The shape served by ``/api/v1/alerts``."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "ip": self.ip,
            "time": self.time,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "count": self.count,
            "score": self.score,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Ban:
    """A ban as recorded: kept after it ends, so that repeat offences can be counted."""

    target: str
    created: float
    expires: float
    reason: str
    origin: str  # an Origin value
    offences: int
    enforced: bool
    lifted: float | None = None
    # "host": this host's firewall drops it; "proxy": the client came through a trusted reverse
    # proxy, whose packets this host cannot drop for one client: enforce it at the proxy.
    enforce_at: str = "host"

    def active(self, now: float) -> bool:
        """In force (or, in monitor mode, what would be in force) at *now*."""
        return self.lifted is None and self.expires > now

    def as_json(self, now: float) -> dict[str, Any]:
        """The shape served by ``/api/v1/bans``."""
        return {
            "ip": self.target,
            "created": self.created,
            "expires": self.expires,
            "remaining_s": max(0, int(self.expires - now)),
            "reason": self.reason,
            "origin": self.origin,
            "offences": self.offences,
            "enforced": self.enforced,
            "enforce_at": self.enforce_at,
        }
