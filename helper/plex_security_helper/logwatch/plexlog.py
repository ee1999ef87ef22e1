"""The grammar of Plex Media Server's HTTP access lines, and nothing else.

Shapes from real, publicly posted logs (tests/helper/samples/real-lines.log names each source):

    <Mon DD, YYYY HH:MM:SS[.mmm]> [<thread>] <Level> <-|—> Request: [<addr>:<port>[ (<class>)]]
        <METHOD> <path> (<n> live)[ #<id>][ TLS][ Page a-b][ GZIP][ Signed-in][ Token (<user>)]
        [ extras][ / <Header> => <value> …]
    … Completed[ after connection close]: [<addr>:<port>] <status> <METHOD> <path> (<n> live)
        [ #<id>][ TLS][ GZIP][ Page a-b] <ms>ms <bytes> bytes[ <status> (0.9 era)][ (pipelined: n)]

The client address comes only from the bracket right after the prefix. The path is logged raw
as the client sent it (real logs never show a space in it): the first `` (N live)`` ends it,
and the flags, the request id and the user come only from their fixed places right after it.
Text after them (header dumps of verbose logging, whose values the client writes) is never
read for flags; the forwarded address is read from it only for a trusted proxy. A Request line
with a second `` (N live)`` (one in the path or in a header) is ambiguous: no flag is read from
it. Completed lines carry no headers, so their path ends at the last marker.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from ..model import NetClass

MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS = {name: number for number, name in enumerate(MONTH_NAMES, 1)}
# A path longer than this is cut before any rule looks at it (the line still counts).
MAX_PATH = 8192

# Levels are localised in some installs ("Ladění —", "Debug —"): any letters, either dash.
# One expression for both kinds (one match per line: this runs for every line of the log).
# Every optional piece is written ``(?:X|)``, not ``(?:X)?``: the same language and the same
# captures, but sre runs a branch where it would run a repeat with its saved state, a quarter
# of the match time on these lines.
# Bracketed IPv6, IPv4 (no backtracking into the port), or an unbracketed ::ffff:a.b.c.d.
_ADDR = r"(\[[0-9A-Fa-f:.]{2,45}(?:%[\w.-]{1,32}|)\]|[0-9.]{7,15}(?=:)|[0-9A-Fa-f:.]{2,45}):(\d{1,5})"
_PAGE = r"(?: Page \d{1,9}-\d{1,9}|)"
# The stamp is taken as 21 characters and checked by LogParser.epoch (cached per second):
# cheaper than a pattern of ten small repeats, and just as strict.
_LINE = re.compile(
    r"(.{21})(?:\.(\d\d\d)|) \[[0-9a-fA-Fx]{1,20}\] \S{1,24} [-\u2014] "
    r"(?:Request: \[" + _ADDR + r"(?: \(([A-Za-z][A-Za-z ]{0,30}(?:\([A-Za-z]{1,16}\)|))\)|)\] "
    r"([A-Z]{1,16}) (.+?) \(\d{1,9} live\)(?: #([0-9a-fA-F]{1,16})|)(?: TLS|)"
    + _PAGE
    + r"(?: GZIP|)"
    + _PAGE
    + r"(?:( Signed-in)|)(?: Token \(([^()\n]{0,128})\)|)(.*)"
    r"|Completed(?: after connection close|): \[" + _ADDR + r"\] (?:(-?\d{1,3}) |)([A-Z]{1,16}) (.+) "
    r"\(\d{1,9} live\)(?: #([0-9a-fA-F]{1,16})|)(?: TLS|)(?: GZIP|)"
    + _PAGE
    + r" \d{1,12}ms \d{1,15} bytes(?: (-?\d{1,3})|)(?: |$))",
    re.ASCII,  # digits are ASCII digits; \S still takes a localised level
)
# A second "(N live)" after the first: the path or a header value holds one. Which marker is
# Plex's cannot be told, so no flag, user or forwarded address is read from such a line.
_MARK = re.compile(r" \(\d{1,9} live\)")
_LAST_MARK = re.compile(r"(.+) \(\d{1,9} live\)")
# The same grammar for the common case, one marker and a path without spaces (every real
# line): scanning a space-free token is twice as fast as finding the marker after an arbitrary
# path. Other lines get the general expression, which reads them as before.
_LINE_FAST = re.compile(
    _LINE.pattern.replace(r"([A-Z]{1,16}) (.+?) \(", r"([A-Z]{1,16}) ([^ ]+) \(").replace(
        r"([A-Z]{1,16}) (.+) ", r"([A-Z]{1,16}) ([^ ]+) "
    ),
    re.ASCII,
)
assert _LINE_FAST.pattern.count("([^ ]+)") == 2, "both paths take the fast form"
_STAMP = re.compile(r"[A-Z][a-z]{2} \d{2}, \d{4} \d{2}:\d{2}:\d{2}", re.ASCII)
# Header dumps: `` / Name => value`` in alphabetical order. Values are the client's text and may
# hold `` / Name => `` themselves, so where a value ends cannot be told from the dump alone.
_FORWARDED = re.compile(r" / X-Forwarded-For => ", re.IGNORECASE)
_HEADER = re.compile(r" / [A-Za-z0-9-]{1,64} => ")
# Readings of where X-Forwarded-For ends that are compared; a dump with more after it is refused.
MAX_READINGS = 64
_MAX_ENTRY = 64  # longer than any address with brackets, quotes and a zone
_CLASSES = {c.value: c for c in NetClass}


@dataclass(slots=True)
class LogRecord:
    """One parsed Request or Completed line. ``ip`` is the bracket address.

    Not frozen: a frozen dataclass sets every field through object.__setattr__, a fifth of the
    parser's time on a busy log. Records are never changed after parsing all the same.
    """

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
    client: str | None = None  # the forwarded client, for a trusted proxy's Request only


@functools.lru_cache(maxsize=65_536)
def canonical_ip(text: str) -> str | None:
    """Validated, canonical form of a bracket-field address (cached: clients repeat)."""
    raw = text[1:-1].split("%", 1)[0] if text.startswith("[") else text
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        return None
    # Plex writes IPv4 clients of a dual-stack socket as ::ffff:a.b.c.d: judge the IPv4 address.
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def forwarded_client(tail: str, is_proxy: Callable[[str], bool]) -> str | None:
    """The client a trusted proxy forwarded for, from the X-Forwarded-For value of a header dump.

    The proxy appends the address it saw, so the rightmost entry that is not itself a trusted
    proxy is the client (RFC 7239 semantics: a client can only prepend). The client's own text
    can hold a second ``X-Forwarded-For =>`` or a fake `` / Name => `` that ends the value early
    (the proxy's entry then lands behind it): so every place the value may end is read, and the
    address is believed only when all readings that name one name the same. Otherwise, or when
    there is none, None: the request is the proxy's own, judged against nobody, never framed on
    an address the client chose.
    """
    marks = list(_FORWARDED.finditer(tail))
    if len(marks) != 1:
        return None  # no header, or one the client wrote inside another header's value
    start = marks[0].end()
    ends = [m.start() for m in itertools.islice(_HEADER.finditer(tail, start), MAX_READINGS + 1)]
    if len(ends) > MAX_READINGS:
        return None
    found: str | None = None
    for end in (*ends, len(tail)):
        client = _rightmost_client(tail[start:end], is_proxy)
        if client is not None:
            if found is not None and client != found:
                return None
            found = client
    return found


def _rightmost_client(value: str, is_proxy: Callable[[str], bool]) -> str | None:
    """The rightmost entry of one reading of X-Forwarded-For that is not a trusted proxy."""
    for entry in reversed(value.split(",")):
        text = entry.strip().strip('[]"')
        ip = canonical_ip(text) if len(text) <= _MAX_ENTRY else None
        if ip is None:
            return None
        if not is_proxy(ip):
            return ip
    return None


class LogParser:
    """Parses lines; caches the epoch of each log second since that is the costly part."""

    def __init__(self, zone: tzinfo | None = None, is_proxy: Callable[[str], bool] | None = None) -> None:
        self._zone = zone
        self._second_cache: dict[str, float] = {}
        self._minute_cache: dict[str, float] = {}
        self._is_proxy = is_proxy
        self.last_time: float | None = None  # of the newest access line parsed

    def epoch(self, stamp: str) -> float | None:
        """Epoch seconds of ``Mon DD, YYYY HH:MM:SS`` in the log's zone; None for no real date.

        The zone's offset is the same for a whole minute (transitions fall on minute boundaries),
        so each minute is converted once and its seconds are added: a quiet log has a new second
        on nearly every line.
        """
        epoch: float | None = None
        if _STAMP.fullmatch(stamp) and (seconds := int(stamp[19:21])) < 60:
            minute = stamp[:18]
            base = self._minute_cache.get(minute)
            if base is None:
                base = self._minute(minute)
            if base is not None:
                epoch = base + seconds
        if epoch is not None:  # a bad stamp is recomputed each time: rare, and cheap to refuse
            if len(self._second_cache) > 4096:
                self._second_cache.clear()
            self._second_cache[stamp] = epoch
        return epoch

    def _minute(self, minute: str) -> float | None:
        month = MONTHS.get(minute[:3])
        if month is None:
            return None
        try:
            naive = datetime(int(minute[8:12]), month, int(minute[4:6]), int(minute[13:15]), int(minute[16:18]))
        except ValueError:
            return None
        # No zone given: the host's local time, as Plex writes it.
        aware = naive.replace(tzinfo=self._zone) if self._zone else naive.astimezone()
        base = aware.timestamp()
        if len(self._minute_cache) > 4096:
            self._minute_cache.clear()
        self._minute_cache[minute] = base
        return base

    def parse(self, line: str) -> LogRecord | None:
        """Parse one line; anything that is not an HTTP access line gives None."""
        m = _LINE_FAST.match(line)
        # Where the fast form matches a Request line the general one reads it the same way (both
        # stop at the first marker; the Request form runs to the end of the line). A Completed
        # line's path ends at its last marker: with another one after the fast match, only the
        # general form reads it right.
        if m is None or line.find(" live)", m.end()) >= 0:
            m = _LINE.match(line)
            if m is None:
                return None
        (stamp, ms, r_addr, r_port, cls, r_method, r_path, r_rid, signed, user, rest,
         c_addr, c_port, status, c_method, c_path, c_rid, late_status) = m.groups()  # fmt: skip
        epoch = self._second_cache.get(stamp)
        if epoch is None:
            epoch = self.epoch(stamp)
            if epoch is None:
                return None
        if ms is not None:
            epoch += int(ms) / 1000
        self.last_time = epoch
        if r_addr is not None:
            ip = canonical_ip(r_addr)
            port = int(r_port)
            if ip is None or port > 65535:
                return None
            client = None
            if " live)" in rest and _MARK.search(rest):
                last = _LAST_MARK.match(line, m.start(7))
                assert last is not None  # the first marker is there at least
                # The request id too may be the attacker's: join by address and port instead.
                r_path, r_rid = last.group(1), None
                signed = user = None
            elif self._is_proxy is not None and self._is_proxy(ip):
                # No usable forwarded address: the proxy itself (judged by nobody downstream).
                client = forwarded_client(rest, self._is_proxy) or ip
            return LogRecord(
                epoch,
                False,
                ip,
                port,
                _CLASSES.get(cls, NetClass.UNKNOWN) if cls is not None else None,
                r_method,
                r_path if len(r_path) <= MAX_PATH else r_path[:MAX_PATH],
                None,
                r_rid.lower() if r_rid else None,
                user or None,
                signed is not None,
                client,
            )
        if (status is None) == (late_status is None):
            return None  # the status comes once: before the method, or after the bytes (PMS 0.9)
        ip = canonical_ip(c_addr)
        port = int(c_port)
        if ip is None or port > 65535:
            return None
        return LogRecord(
            epoch,
            True,
            ip,
            port,
            None,
            c_method,
            c_path if len(c_path) <= MAX_PATH else c_path[:MAX_PATH],
            int(status or late_status),
            c_rid.lower() if c_rid else None,
            None,
            False,
        )


def request_paths(line: str) -> tuple[str, ...]:
    """Each reading of a Request line's path, uncut: up to its first ``(N live)``, and its last.

    The two differ only on an ambiguous line (a header or the path holds a marker), and neither
    is cut at MAX_PATH: the log-write guard predicts a message from what Plex wrote, not from
    what the rules look at. Empty for anything but a Request line.
    """
    m = _LINE.match(line)
    if m is None or m.group(7) is None:
        return ()
    last = _LAST_MARK.match(line, m.start(7))
    assert last is not None  # the first marker is there at least
    return tuple(dict.fromkeys((m.group(7), last.group(1))))


def log_lines(text: str) -> list[str]:
    """*text* cut into lines as every reader of the log cuts it: at each newline, trailing CRs off.

    A lone CR inside a line does not cut it. The log-write guard predicts the lines of a client's
    message with this same rule, so a forged line reads the same to both (logwrites.py).
    """
    lines = text.split("\n")
    return [line.rstrip("\r") for line in lines] if "\r" in text else lines


def looks_like_access(line: str) -> bool:
    """An access line's markers (for counting lines that should have parsed and did not)."""
    return "Request: [" in line or "Completed: [" in line or "connection close: [" in line
