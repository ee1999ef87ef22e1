"""Judge HTTP events: which are failed logins, and when an address becomes an attacker.

Knows nothing of nftables or the database: it takes events and returns facts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..config import DetectConfig
from ..store import Alert, FailedAuth
from .plexlog import HttpEvent, NetClass

# Classes Plex considers local; their 401s are the owner's own devices.
_LOCAL_CLASSES = frozenset({NetClass.LOOPBACK, NetClass.SUBNET, NetClass.ALLOWED_SUBNET})
_AUTH_FAILURES = frozenset({401})


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


@dataclass(slots=True)
class _Window:
    times: deque[float] = field(default_factory=deque)
    alerted_until: float = 0.0


@dataclass(slots=True)
class Verdicts:
    """What one batch of events produced."""

    failures: list[FailedAuth] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


class Detector:
    """Sliding-window failed-login rule: *threshold* failures within *window* seconds."""

    def __init__(self, config: DetectConfig) -> None:
        self._threshold = config.failed_auth_threshold
        self._window = float(config.failed_auth_window)
        self._windows: dict[str, _Window] = {}

    def feed(self, event: HttpEvent, out: Verdicts) -> None:
        """Add one event's consequences to *out*."""
        if not is_failed_auth(event):
            return
        out.failures.append(FailedAuth(ip=event.ip, time=event.time, path=event.path[:200]))
        win = self._windows.get(event.ip)
        if win is None:
            win = self._windows[event.ip] = _Window()
        win.times.append(event.time)
        while win.times and win.times[0] < event.time - self._window:
            win.times.popleft()
        if len(win.times) >= self._threshold and event.time >= win.alerted_until:
            # One alert per burst: quiet until the window has passed.
            win.alerted_until = event.time + self._window
            out.alerts.append(
                Alert(
                    kind="failed_login_burst",
                    ip=event.ip,
                    time=event.time,
                    first_seen=win.times[0],
                    last_seen=event.time,
                    count=len(win.times),
                    score=min(100, 50 + 10 * len(win.times)),
                    detail={"sample_path": event.path[:200], "window_s": int(self._window)},
                )
            )
        if len(self._windows) > 100_000:
            self._expire(event.time)

    def _expire(self, now: float) -> None:
        """Forget addresses that went quiet, so memory stays bounded under a spray."""
        stale = [ip for ip, w in self._windows.items() if not w.times or w.times[-1] < now - self._window]
        for ip in stale:
            del self._windows[ip]
