"""Lines a client wrote into the log through Plex's ``/log`` endpoint: found, dropped, attributed.

A signed-in client can make Plex write text (``GET|PUT /log?message=…``, ``POST /log`` with
a body); a message with line breaks becomes whole lines, access lines among them, with any
address, timestamp or thread the writer chose. Nothing in a forged line can be trusted, so
the judgement rests on what the writer cannot write: its own Request line, which Plex logs
before the handler writes anything, and whose path is logged URL-encoded on one line.

- A message in the query is decoded from that Request line, so the exact lines it will
  produce are known in advance. Each arriving line that equals one of them is the writer's
  (consumed: judged against nobody, counted against the writer), whatever it claims; every
  other line is real and passes at once. Its first line follows Plex's own prefix, so it is
  matched as a suffix. A window lasts until the writer's Completed line (a Completed that is
  itself one of the message's lines cannot close it).
- A body (``POST``) cannot be seen. Lines that arrive while such a write is open are held
  until the writer's Completed line: a refusal (401/403: Plex wrote nothing) releases them as
  they are; otherwise they are released *unverified*: recorded, never evidence for a ban. A
  further Completed of the same request within ``LINGER`` records extends the window (the
  first one may have been forged). A write that opens while a body write is open may be a line
  of its forged text: at most ``MAX_TAINTED`` are tracked, and each holds for ``LINGER`` records
  once no other body write is open, not until ``HOLD_LIMIT``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .plexlog import LogRecord, log_lines, request_paths

# Lines a single write may hold before the window is given up (and its held lines released).
HOLD_LIMIT = 20_000
LINGER = 2000
# Writes opened while a body write is open (their Request lines may be its forged text): at most
# this many are tracked, each costs a look at every record, and a forger can write thousands.
MAX_TAINTED = 64
_BREAK = re.compile(r"\r\n|\r|\n")
_ACCESS_BODIES = ("Request: [", "Completed: [", "Completed after connection close: [")


def is_log_write(path: str) -> bool:
    """Plex's client-log endpoint (``/log``) or the transcoder's ``…/progress/log``."""
    base = path.split("?", 1)[0]
    return base == "/log" or base.endswith("/log")


def message_lines(path: str) -> list[list[str]] | None:
    """The lines each decoding of the path's ``message`` would write; None when there is none."""
    query = path.split("?", 1)[1] if "?" in path else ""
    if "message=" not in query:
        return None
    variants: list[list[str]] = []
    for plus_is_space in (False, True):
        text = query if plus_is_space else query.replace("+", "%2B")
        for key, value in parse_qsl(text, keep_blank_values=True):
            if key == "message":
                # Written as it is, the text becomes the lines a reader cuts (a lone CR stays
                # inside a line); a Plex that broke lines at every CR would write these instead.
                variants.append(log_lines(value))
                variants.append(_BREAK.split(value))
    return variants or None


@dataclass(slots=True)
class _Window:
    writer: LogRecord
    writer_raw: str
    first: tuple[str, ...]  # the message's first line, per decoding (matched as a suffix)
    rest: Counter[str]  # the message's further lines, each expected once
    opaque: bool
    tainted: bool  # opened while a body write was open: its Request may be forged itself
    in_held: bool = False  # its Request line is among the held lines
    forged: int = 0
    status: int | None = None
    linger: int = 0
    age: int = 0


@dataclass(slots=True)
class Passed:
    """One record let through: whether it is unverified (possibly the writer's)."""

    record: LogRecord
    raw: str
    unverified: bool = False


@dataclass(slots=True)
class Injection:
    """A write that put forged access lines into the log: the writer's Request and how many."""

    writer: LogRecord
    forged: int


class LogWriteGuard:
    """Sits between the parser and the joiner (see the module docstring)."""

    def __init__(self, looks_like_access: Callable[[str], bool]) -> None:
        self._looks_like_access = looks_like_access
        self.windows: list[_Window] = []
        self.held: list[Passed] = []
        self.injections: list[Injection] = []
        self.forged_lines = 0
        self._episode_refused = True  # every body write of the current hold was refused
        self._episode_writers: set[str] = set()

    @property
    def active(self) -> bool:
        """Whether any write is open (only then does a line need its raw text)."""
        return bool(self.windows)

    def carry(self) -> list[str]:
        """The raw lines to feed again after a restart for the same state.

        The open writes' Request lines, then the held lines: committed with the log position.
        """
        return [w.writer_raw for w in self.windows if not w.in_held] + [p.raw for p in self.held]

    def feed(self, rec: LogRecord, raw: str, out: list[Passed]) -> None:
        """Judge one record; what passes is appended to *out* in file order."""
        if self.windows:
            for window in self.windows:
                if not window.opaque and self._consume(window, raw):
                    return
            if rec.completed:
                self._close(rec)
        holding = any(w.opaque for w in self.windows)
        if not rec.completed and is_log_write(rec.path):
            self._open(rec, raw, tainted=holding)
            holding = any(w.opaque for w in self.windows)
        passed = Passed(rec, raw)
        if holding:
            if not self.held:
                self._episode_refused, self._episode_writers = True, set()
            if self.windows and self.windows[-1].writer is rec:
                self.windows[-1].in_held = True
            self.held.append(passed)
        else:
            out.append(passed)
        self._age(out)

    def flush(self, out: list[Passed]) -> None:
        """End of input (``scan``): open writes end unconfirmed, held lines are released."""
        for window in self.windows:
            if window.opaque:
                self._episode_writers.add(window.writer.ip)
                if window.status not in (401, 403):
                    self._episode_refused = False
            elif window.forged and not window.tainted:
                self.injections.append(Injection(window.writer, window.forged))
        self.windows.clear()
        self._release(out)

    def _open(self, rec: LogRecord, raw: str, *, tainted: bool) -> None:
        if tainted and sum(w.tainted for w in self.windows) >= MAX_TAINTED:
            return  # what it would write arrives while the body write holds every line anyway
        # Every reading of the path, uncut (a header holding "(1 live)" makes two; a long message
        # runs past what the parser keeps): a reading without a message may be a body write.
        found = [message_lines(path) for path in request_paths(raw) or (rec.path,)]
        # Bytes that did not decode (U+FFFD): what Plex made of them cannot be known from the line,
        # so the message's lines cannot be predicted. Held like a body write.
        if "\ufffd" in raw or any(lines is None for lines in found):
            self.windows.append(_Window(rec, raw, (), Counter(), opaque=True, tainted=tainted))
            return
        variants = [variant for lines in found if lines is not None for variant in lines]
        # The first line follows Plex's own prefix: it can pass for an access line only when it is
        # an access line's body itself, and only then is it matched (as the end of a line; a
        # short first line such as "GZIP" would otherwise take real lines with it).
        first = tuple({v[0] for v in variants if v and v[0].startswith(_ACCESS_BODIES)})
        rest: Counter[str] = Counter()
        for lines in {tuple(v[1:]) for v in variants}:
            rest.update(line for line in lines if line)
        if not rest and not first:
            return  # one plain line: nothing it writes can pass for an access line
        self.windows.append(_Window(rec, raw, first, rest, opaque=False, tainted=tainted))

    def _consume(self, window: _Window, raw: str) -> bool:
        if window.rest.get(raw, 0) > 0:
            window.rest[raw] -= 1
        elif window.first and any(raw.endswith(f) for f in window.first):
            window.first = ()
        else:
            return False
        if self._looks_like_access(raw):
            window.forged += 1
            self.forged_lines += 1
        return True

    def _close(self, rec: LogRecord) -> None:
        for window in self.windows:
            w = window.writer
            if rec.ip != w.ip or rec.port != w.port:
                continue
            if rec.request_id is not None and w.request_id is not None and rec.request_id != w.request_id:
                continue
            window.status = rec.status
            window.linger = LINGER if window.opaque else 0
            return

    def _age(self, out: list[Passed]) -> None:
        """Count one more record against each open write; end the ones that are done."""
        keep: list[_Window] = []
        # Once no body write that is surely real is open, a write opened inside one (perhaps a
        # line of its forged text, which no Completed will ever close) holds for LINGER more
        # records, not up to HOLD_LIMIT: one forged line must not blind the detector for long.
        untainted_body = any(w.opaque and not w.tainted for w in self.windows)
        for window in self.windows:
            window.age += 1
            if window.tainted and window.opaque and not untainted_body:
                window.age = max(window.age, HOLD_LIMIT - LINGER)
            done = window.age > HOLD_LIMIT
            if window.status is not None:
                window.linger -= 1
                done = done or window.linger < 0
            if not done:
                keep.append(window)
                continue
            if window.opaque:
                self._episode_writers.add(window.writer.ip)
                if window.status not in (401, 403):
                    self._episode_refused = False
            elif window.forged and not window.tainted:
                self.injections.append(Injection(window.writer, window.forged))
        self.windows = keep
        if self.held and not any(w.opaque for w in self.windows):
            self._release(out)

    def _release(self, out: list[Passed]) -> None:
        """Let the held records through: as they are after refused writes, else unverified.

        The writers' own records are never unverified: what they wrote is theirs either way.
        """
        for passed in self.held:
            passed.unverified = not self._episode_refused and passed.record.ip not in self._episode_writers
            out.append(passed)
        self.held.clear()
