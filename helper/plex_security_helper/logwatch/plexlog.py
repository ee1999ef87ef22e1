"""Turn Plex Media Server log lines into typed HTTP events.

The client address is taken only from the structured bracket field right after the
``Request:``/``Completed:`` prefix of a line whose whole prefix matched; text later in the
line (request paths, messages written through ``/log``) can never supply an address.
"""

from __future__ import annotations

import ipaddress
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum

MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS = {name: number for number, name in enumerate(MONTH_NAMES, 1)}

# `<Mon DD, YYYY HH:MM:SS.mmm> [<thread>] <LEVEL> - <message>`; a localised level and an
# em dash appear in pasted copies, so both are accepted.
_LINE = re.compile(
    r"(?P<mon>[A-Z][a-z]{2}) (?P<day>\d{2}), (?P<year>\d{4}) "
    r"(?P<hms>\d{2}:\d{2}:\d{2})\.(?P<ms>\d{3}) "
    r"\[(?:0x[0-9a-fA-F]+|\d+)\] (?P<level>[A-Za-z]+) (?:-|\u2014) "
    r"(?P<kind>Request|Completed(?: after connection close)?): "
    r"\[(?P<addr>\[[0-9A-Fa-f:.]+(?:%[\w.-]+)?\]|[0-9.]+):(?P<port>\d{1,5})"
    r"(?: \((?P<cls>[^()\]]*(?:\([^()\]]*\))?)\))?\] "
    r"(?:(?P<status>\d{3}) )?(?P<method>[A-Z]+) (?P<rest>.*)"
)
# The path ends at the *last* `(N live)`: a hostile path cannot fake the real tail after it.
_REST = re.compile(r"(?P<path>.*) \((?P<live>\d+) live\)(?P<tail>.*)")
_RID = re.compile(r" #(?P<rid>[0-9a-fA-F]+)\b")
_USER = re.compile(r" Token \((?P<user>[^()]*)\)")
_XFF = re.compile(r" X-Forwarded-For => (?P<xff>[0-9A-Fa-f:.\[\]]+)")
# Plex's endpoint for client log messages (PUT/POST/GET /log?message=…).
LOG_WRITE = re.compile(r"^/log(?:/|\?|$)")
QUARANTINE_SECONDS = 2.0
_DURATION = re.compile(r" (?P<ms>\d+)ms (?P<bytes>\d+) bytes")


class NetClass(StrEnum):
    """How Plex classified the client network."""

    WAN = "WAN"
    SUBNET = "Subnet"
    LOOPBACK = "Loopback"
    ALLOWED_SUBNET = "Allowed Network (Subnet)"
    ALLOWED_WAN = "Allowed Network (WAN)"
    UNKNOWN = "Unknown"


_CLASSES = {c.value: c for c in NetClass}


# Not frozen: a frozen dataclass sets every field through object.__setattr__, a fifth of the
# parser's time on a busy log. Records are never changed after parsing all the same.
@dataclass(slots=True)
class LogRecord:
    """One parsed Request or Completed line."""

    time: float
    completed: bool
    ip: str
    port: int
    net_class: NetClass | None
    method: str
    path: str
    status: int | None
    request_id: str | None
    user: str | None
    signed_in: bool
    forwarded_for: str | None


@dataclass(slots=True)
class HttpEvent:
    """A finished HTTP request: a Completed line joined with its Request line when seen."""

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
    forwarded_for: str | None
    # Completed while a /log write was being handled: a signed-in user may have written it.
    suspect: bool = False


_IP_CACHE: dict[str, str | None] = {}
_IP_CACHE_MAX = 65_536


def canonical_ip(text: str) -> str | None:
    """Validated, canonical form of a bracket-field address (cached: clients repeat)."""
    cached = _IP_CACHE.get(text, "")
    if cached != "":
        return cached
    raw = text[1:-1].split("%", 1)[0] if text.startswith("[") else text
    try:
        result: str | None = str(ipaddress.ip_address(raw))
    except ValueError:
        result = None
    if len(_IP_CACHE) >= _IP_CACHE_MAX:
        _IP_CACHE.clear()
    _IP_CACHE[text] = result
    return result


class LogParser:
    """Parses lines; caches the epoch of each log second since that is the costly part."""

    def __init__(self, zone: tzinfo | None = None) -> None:
        self._zone = zone
        self._second_cache: dict[str, float] = {}

    def epoch(self, year: str, mon: str, day: str, hms: str) -> float | None:
        """Epoch seconds of a log timestamp in the log's zone; None when it is no real date."""
        key = f"{year}{mon}{day}{hms}"
        cached = self._second_cache.get(key)
        if cached is not None:
            return cached
        month = MONTHS.get(mon)
        if month is None:
            return None
        try:
            hour, minute, second = (int(x) for x in hms.split(":"))
            naive = datetime(int(year), month, int(day), hour, minute, second)
        except ValueError:
            return None
        # A naive datetime with no zone given is taken as the host's local time, like Plex writes it.
        aware = naive.replace(tzinfo=self._zone) if self._zone else naive.astimezone()
        epoch = aware.timestamp()
        if len(self._second_cache) > 4096:
            self._second_cache.clear()
        self._second_cache[key] = epoch
        return epoch

    def parse(self, line: str) -> LogRecord | None:
        """Parse one line; anything that is not an HTTP access line gives None."""
        m = _LINE.match(line)
        if m is None:
            return None
        # One tuple instead of a lookup per named group: this runs for every line of the log.
        mon, day, year, hms, ms, _level, kind, addr, port_text, cls_text, status, method, rest_text = m.groups()
        completed = kind != "Request"
        if completed != (status is not None):
            return None
        ip = canonical_ip(addr)
        port = int(port_text)
        if ip is None or port > 65535:
            return None
        epoch = self.epoch(year, mon, day, hms)
        if epoch is None:
            return None
        rest = _REST.fullmatch(rest_text)
        if rest is None:
            path, tail = rest_text.rstrip(), ""
        else:
            path, _live, tail = rest.groups()
        # Cheap substring checks first: most tails carry only an id and flags.
        rid = _RID.search(tail) if "#" in tail else None
        user = _USER.search(tail) if "Token (" in tail else None
        xff = _XFF.search(tail) if "Forwarded" in tail else None
        return LogRecord(
            epoch + int(ms) / 1000,
            completed,
            ip,
            port,
            _CLASSES.get(cls_text, NetClass.UNKNOWN) if cls_text is not None else None,
            method,
            path,
            int(status) if status is not None else None,
            rid.group(1).lower() if rid else None,
            user.group(1) if user else None,
            " Signed-in" in tail,
            canonical_ip(xff.group(1)) if xff else None,
        )


class RequestJoiner:
    """Pairs Completed lines with their Request line (by request id, else by ip:port).

    A pairing needs the same client address on both lines, so a forged request id can
    never lend one client's class or user to another's response.
    """

    def __init__(self, capacity: int = 20_000) -> None:
        self._pending: OrderedDict[tuple[str, str], LogRecord] = OrderedDict()
        # (ip, port) -> key of that connection's latest request still pending: it never
        # outgrows _pending, since an entry goes when the request it names goes.
        self._by_port: dict[tuple[str, int], tuple[str, str]] = {}
        self.capacity = capacity
        # While Plex handles a /log write, the lines it writes may be the writer's own text
        # (a message with newlines forges whole lines): events from anyone else are suspect.
        self._quarantine_until = 0.0
        self._quarantine_owner = ""

    @staticmethod
    def _key(rec: LogRecord) -> tuple[str, str]:
        return (rec.ip, rec.request_id or f":{rec.port}")

    def _forget_connection(self, req: LogRecord, key: tuple[str, str]) -> None:
        conn = (req.ip, req.port)
        if self._by_port.get(conn) == key:
            del self._by_port[conn]

    def _take(self, key: tuple[str, str]) -> LogRecord | None:
        req = self._pending.pop(key, None)
        if req is not None:
            self._forget_connection(req, key)
        return req

    def feed(self, rec: LogRecord) -> HttpEvent | None:
        """Remember a Request; turn a Completed into an event."""
        if not rec.completed:
            if LOG_WRITE.match(rec.path):
                self._quarantine_until = rec.time + QUARANTINE_SECONDS
                self._quarantine_owner = rec.ip
            key = self._key(rec)
            replaced = self._pending.get(key)
            if replaced is not None:
                self._forget_connection(replaced, key)
            self._pending[key] = rec
            self._by_port[(rec.ip, rec.port)] = key
            if len(self._pending) > self.capacity:
                old_key, old_req = self._pending.popitem(last=False)
                self._forget_connection(old_req, old_key)
            return None
        req = self._take(self._key(rec))
        if req is None and rec.request_id is not None:
            req = self._take((rec.ip, f":{rec.port}"))
        if req is None and rec.request_id is None:
            # The Request carried an id and its Completed did not: the connection's latest request.
            latest = self._by_port.get((rec.ip, rec.port))
            req = self._take(latest) if latest is not None else None
        if req is not None and req.port != rec.port:
            req = None
        assert rec.status is not None
        return HttpEvent(
            time=rec.time,
            ip=rec.ip,
            port=rec.port,
            net_class=(req.net_class if req and req.net_class else NetClass.UNKNOWN),
            method=rec.method,
            path=rec.path,
            status=rec.status,
            request_id=rec.request_id,
            user=req.user if req else None,
            signed_in=req.signed_in if req else False,
            forwarded_for=req.forwarded_for if req else None,
            suspect=rec.time <= self._quarantine_until and rec.ip != self._quarantine_owner,
        )
