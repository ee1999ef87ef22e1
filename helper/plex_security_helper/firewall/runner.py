"""Running the firewall tools: argument lists only, a timeout, and a clear error."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

TIMEOUT = 15.0


class BackendError(Exception):
    """A firewall tool is missing, timed out or refused the change."""


def run_tool(argv: Sequence[str], stdin: str | None = None, timeout: float = TIMEOUT) -> str:
    """Run *argv* (never through a shell) and return its stdout."""
    try:
        done = subprocess.run(  # noqa: S603 - an argument list from our own code, never a shell
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise BackendError(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise BackendError(f"{argv[0]} did not answer within {timeout:.0f} s") from None
    except OSError as err:
        raise BackendError(f"cannot run {argv[0]}: {err.strerror}") from None
    if done.returncode != 0:
        message = " ".join(done.stderr.split())[:400] or f"exit status {done.returncode}"
        raise BackendError(f"{argv[0]} failed: {message}")
    return done.stdout
