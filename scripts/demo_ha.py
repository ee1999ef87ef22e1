"""Drive the demo Home Assistant through its real HTTP APIs.

``setup``: onboard with a demo user and add the Plex Security integration through the
config flow, exactly as a person would in the UI. ``check``: wait until the integration's
entities report non-trivial values and print them.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

CLIENT_ID = "http://localhost:8123/"


def call(base: str, method: str, path: str, body: Any = None, *, token: str | None = None, form: bool = False) -> Any:
    data = None
    headers = {}
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def wait_up(base: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            call(base, "GET", "/api/onboarding")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    raise SystemExit(f"Home Assistant did not answer at {base} within {timeout:.0f}s")


def setup(args: argparse.Namespace) -> None:
    base = args.url
    wait_up(base, args.timeout)
    steps = {s["step"]: s["done"] for s in call(base, "GET", "/api/onboarding")}
    if not steps.get("user"):
        result = call(
            base,
            "POST",
            "/api/onboarding/users",
            {
                "client_id": CLIENT_ID,
                "name": "Demo",
                "username": args.username,
                "password": args.password,
                "language": "en",
            },
        )
        code = result["auth_code"]
    else:
        raise SystemExit("Home Assistant is already onboarded; remove the demo folder to start over")
    tokens = call(
        base,
        "POST",
        "/auth/token",
        {"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID},
        form=True,
    )
    access = tokens["access_token"]
    call(base, "POST", "/api/onboarding/core_config", {}, token=access)
    call(base, "POST", "/api/onboarding/analytics", {}, token=access)
    call(base, "POST", "/api/onboarding/integration", {"client_id": CLIENT_ID, "redirect_uri": CLIENT_ID}, token=access)
    # A long-lived token lets `check` read states without the password dance.
    flow = call(base, "POST", "/api/config/config_entries/flow", {"handler": "plex_security"}, token=access)
    result = call(
        base,
        "POST",
        f"/api/config/config_entries/flow/{flow['flow_id']}",
        {
            "host": "127.0.0.1",
            "port": args.helper_port,
            "token": args.helper_token,
            "ssl": False,
            "verify_ssl": True,
        },
        token=access,
    )
    if result.get("type") != "create_entry":
        raise SystemExit(f"config flow did not create the entry: {result}")
    Path(args.token_file).write_text(tokens["refresh_token"])
    print(f"Home Assistant onboarded; user {args.username!r}, integration added ({result['title']})")


def tokens_from_refresh(base: str, refresh: str) -> dict[str, Any]:
    """A fresh access token (and its lifetime) for the demo user."""
    tokens: dict[str, Any] = call(
        base,
        "POST",
        "/auth/token",
        {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT_ID},
        form=True,
    )
    return tokens


def _access_from_refresh(base: str, refresh: str) -> str:
    return str(tokens_from_refresh(base, refresh)["access_token"])


def check(args: argparse.Namespace) -> None:
    base = args.url
    access = _access_from_refresh(base, Path(args.token_file).read_text().strip())
    deadline = time.monotonic() + args.timeout
    found: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = call(base, "GET", "/api/states", token=access)
        found = {
            s["entity_id"]: s["state"]
            for s in states
            if s["entity_id"].split(".", 1)[1].startswith("plex_security")
            and s["entity_id"].split(".", 1)[0] in ("sensor", "event")
        }
        failed = [v for k, v in found.items() if k.endswith("failed_logins_24_h")]
        events = [v for k, v in found.items() if k.startswith("event.")]
        if failed and failed[0] not in ("unknown", "unavailable", "0") and events and events[0] != "unknown":
            for entity_id, state in sorted(found.items()):
                print(f"  {entity_id} = {state}")
            return
        time.sleep(2)
    raise SystemExit(f"plex_security entities did not report values within {args.timeout:.0f}s: {found}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["setup", "check"])
    parser.add_argument("--url", default="http://127.0.0.1:8123")
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="demo-password")
    parser.add_argument("--helper-port", type=int, default=8788)
    parser.add_argument("--helper-token", default="")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--timeout", type=float, default=240)
    args = parser.parse_args()
    if args.action == "setup":
        setup(args)
    else:
        check(args)


if __name__ == "__main__":
    main()
