"""Pair each Completed line with its Request line: the class and the user live only there."""

from __future__ import annotations

from ..model import HttpEvent, NetClass
from .plexlog import LogRecord


class RequestJoiner:
    """Pairs Completed lines with their Request line (by request id, else by ip:port).

    A pairing needs the same bracket address on both lines, so a forged request id can
    never lend one client's class or user to another's response. Requests that arrived while
    a client's text may have been written into the log (see logwrites.py) are *unverified*,
    and so is every event made from them.
    """

    def __init__(self, capacity: int = 20_000) -> None:
        # A plain dict keeps insertion order: its first key is the oldest pending request.
        self._pending: dict[tuple[str, str], tuple[LogRecord, bool]] = {}
        # (ip, port) -> key of that connection's latest request still pending: it never
        # outgrows _pending, since an entry goes when the request it names goes.
        self._by_port: dict[tuple[str, int], tuple[str, str]] = {}
        self.capacity = capacity

    def __len__(self) -> int:
        return len(self._pending)

    @staticmethod
    def _key(rec: LogRecord) -> tuple[str, str]:
        return (rec.ip, rec.request_id or f":{rec.port}")

    def _forget_connection(self, req: LogRecord, key: tuple[str, str]) -> None:
        conn = (req.ip, req.port)
        if self._by_port.get(conn) == key:
            del self._by_port[conn]

    def _take(self, key: tuple[str, str]) -> tuple[LogRecord, bool] | None:
        found = self._pending.pop(key, None)
        if found is not None:
            self._forget_connection(found[0], key)
        return found

    def request(self, rec: LogRecord, unverified: bool = False) -> None:
        """Remember a Request line until its Completed line arrives."""
        key = self._key(rec)
        replaced = self._pending.get(key)
        if replaced is not None:
            self._forget_connection(replaced[0], key)
        self._pending[key] = (rec, unverified)
        self._by_port[(rec.ip, rec.port)] = key
        if len(self._pending) > self.capacity:
            old_key = next(iter(self._pending))
            old_req, _ = self._pending.pop(old_key)
            self._forget_connection(old_req, old_key)

    def feed(self, rec: LogRecord) -> HttpEvent | None:
        """Remember a Request (None); turn a Completed into its event."""
        if not rec.completed:
            self.request(rec)
            return None
        return self.completed(rec)[0]

    def completed(self, rec: LogRecord) -> tuple[HttpEvent, LogRecord | None, bool]:
        """The event of a Completed line, its Request (if seen) and whether it is unverified."""
        found = self._take(self._key(rec))
        if found is None and rec.request_id is not None:
            found = self._take((rec.ip, f":{rec.port}"))
        if found is None and rec.request_id is None:
            # The Request carried an id and its Completed did not: the connection's latest request.
            latest = self._by_port.get((rec.ip, rec.port))
            found = self._take(latest) if latest is not None else None
        if found is not None and found[0].port != rec.port:
            found = None
        assert rec.status is not None
        req, unverified = found if found is not None else (None, False)
        if req is None:
            event = HttpEvent(
                rec.time,
                rec.ip,
                rec.port,
                NetClass.UNKNOWN,
                rec.method,
                rec.path,
                rec.status,
                rec.request_id,
                None,
                False,
            )
            return event, None, unverified
        client = req.client
        event = HttpEvent(
            rec.time,
            client if client is not None else rec.ip,
            rec.port,
            req.net_class or NetClass.UNKNOWN,
            rec.method,
            rec.path,
            rec.status,
            rec.request_id,
            req.user,
            req.signed_in,
            rec.ip if client is not None else None,
        )
        return event, req, unverified
