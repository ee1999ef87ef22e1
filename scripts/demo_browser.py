"""The browser test: headless Chromium logs into the demo Home Assistant, opens the Plex Security
dashboard, checks that the threat cards show values, and saves a screenshot.

With ``--helper-url``, ``--helper-token`` and ``--plex-log`` it then drives the threat view the
integration serves: a new brute forcer (written to the Plex log) must be listed with its reason
within 2 s; a tap on Unban must lift the ban in the helper; a tap on Enforce must make the helper
enforce (when it has a firewall backend). ``--threat-out`` saves that view.

Talks to Chromium over the DevTools protocol with aiohttp (no extra packages). Usage:
demo_browser.py --url http://localhost:8123 --token-file FILE --out dashboard.png
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
from demo_ha import CLIENT_ID, tokens_from_refresh

DASHBOARD = "/plex-security/threats"
# Names the threat tiles and cards must show (from the integration's translations).
EXPECTED = ("Under attack", "Failed logins (24 h)", "Active bans", "Security score", "Suspicious access")
# Collects the visible text of the page, through every shadow root (HA's frontend is all web components).
DEEP_TEXT = """
(() => {
  const out = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { const t = node.textContent.trim(); if (t) out.push(t); return; }
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(document.body);
  return out.join("\\n");
})()
"""


# Finds an element through every shadow root; the threat card's rows by their address.
DEEP_FIND = """
window.__plexDeep = (sel) => {
  const find = (root) => {
    const hit = root.querySelector(sel);
    if (hit) return hit;
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) { const f = find(el.shadowRoot); if (f) return f; }
    }
    return null;
  };
  return find(document);
};
window.__plexCard = () => window.__plexDeep('plex-security-threats');
window.__plexRow = (ip) => {
  const card = window.__plexCard();
  return card && card.shadowRoot ? card.shadowRoot.querySelector(`.attacker[data-ip="${ip}"]`) : null;
};
true
"""
FRESH_ATTACKER = "203.0.113.201"
WITHIN = 2.0  # seconds from the attacker's log lines to its row in the threat view


class DevTools:
    """A minimal Chrome DevTools protocol client for one page."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        await self._ws.send_json({"id": msg_id, "method": method, "params": params})
        while True:
            msg = await self._ws.receive_json(timeout=60)
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")


def _start_chromium(profile: str) -> tuple[subprocess.Popen[str], int]:
    """Start headless Chromium; return it and its DevTools port."""
    proc = subprocess.Popen(
        [
            _chromium(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,1700",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so that stopping it stops its children
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if found:
            # Keep reading, so that a chatty browser never blocks on a full pipe.
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, int(found.group(1))
    proc.kill()
    raise SystemExit("Chromium did not start its DevTools endpoint")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no Chromium found (scripts/test installs the Debian package chromium)")


def _helper(url: str, token: str, path: str, method: str = "GET") -> Any:
    import urllib.request  # noqa: PLC0415 (the helper's API, only for the threat-view checks)

    req = urllib.request.Request(url + path, method=method, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _write_attack(log: Path, ip: str) -> None:
    """Six wrong passwords from *ip*, as Plex logs them (the demo's traffic writer)."""
    import random  # noqa: PLC0415

    from plex_security_helper.demo.traffic import TrafficWriter  # noqa: PLC0415

    writer = TrafficWriter(log, random.Random(7), rid=0x9000)
    lines = [line for _ in range(6) for line in writer.exchange(ip, "WAN", 401, "/library/sections")]
    with log.open("a", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in lines))


async def _until(page: DevTools, expression: str, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await page.evaluate(expression)
        if value:
            return value
        await asyncio.sleep(0.1)
    raise SystemExit(f"the threat view did not show {what} within {timeout:.0f} s")


async def threat_view(page: DevTools, helper_url: str, helper_token: str, log: Path, out: Path | None) -> str:
    """Attacker within 2 s, Unban lifts the helper's ban, Enforce makes it enforce."""
    await page.evaluate(DEEP_FIND)
    await _until(page, "!!(window.__plexCard() && window.__plexCard().shadowRoot)", 120, "the card")
    await _until(page, "window.__plexCard().shadowRoot.textContent.includes('Recent attackers')", 30, "its lists")
    ip = FRESH_ATTACKER
    written = time.monotonic()
    await asyncio.to_thread(_write_attack, log, ip)
    reason = str(
        await _until(
            page,
            f"(() => {{ const r = window.__plexRow('{ip}'); return r && r.textContent.includes('Failed-login burst')"
            " ? r.querySelector('.why').textContent.trim() : null; })()",
            10,
            f"the brute forcer {ip}",
        )
    )
    shown = time.monotonic() - written
    print(f"threat view: {ip} listed {shown:.2f} s after its log lines: {reason}")
    if shown > WITHIN:
        raise SystemExit(f"the brute forcer took {shown:.2f} s to show (at most {WITHIN} s)")

    # One tap on Unban (the row offers it once the helper's ban is in the list).
    unban = f"window.__plexRow('{ip}') && window.__plexRow('{ip}').querySelector('button[data-action=unban]')"
    await _until(page, f"!!({unban})", 10, f"Unban for {ip}")
    if out is not None:
        await asyncio.sleep(0.5)
        shot = await page.send("Page.captureScreenshot", format="png")
        await asyncio.to_thread(out.write_bytes, base64.b64decode(shot["data"]))
    await page.evaluate(f"({unban}).click()")
    deadline = time.monotonic() + 10
    while any(
        b["ip"] == ip for b in (await asyncio.to_thread(_helper, helper_url, helper_token, "/api/v1/bans"))["bans"]
    ):
        if time.monotonic() > deadline:
            raise SystemExit(f"Unban was tapped, yet the helper still bans {ip}")
        await asyncio.sleep(0.2)
    print(f"threat view: Unban tapped, the helper no longer bans {ip}")

    firewall = await asyncio.to_thread(_helper, helper_url, helper_token, "/api/v1/firewall")
    if firewall["backend"] == "none":
        print("threat view: the helper has no firewall backend here (not root): Enforce not tried")
        return reason
    enforce = "window.__plexCard().shadowRoot.querySelector('button[data-action=enforce]')"
    await _until(page, f"!!({enforce})", 10, "the Enforce button")
    await page.evaluate(f"({enforce}).click()")
    deadline = time.monotonic() + 15
    while not (await asyncio.to_thread(_helper, helper_url, helper_token, "/api/v1/firewall"))["enforcing"]:
        if time.monotonic() > deadline:
            raise SystemExit("Enforce was tapped, yet the helper does not enforce")
        await asyncio.sleep(0.2)
    await _until(page, "window.__plexCard().shadowRoot.textContent.includes('Firewall: enforcing')", 10, "enforcing")
    print("threat view: Enforce tapped, the helper enforces (and the view says so)")
    return reason


async def screenshot(
    base: str,
    refresh_token: str,
    out: Path,
    timeout: float,
    *,
    helper: tuple[str, str, Path] | None = None,
    threat_out: Path | None = None,
) -> str:
    tokens = tokens_from_refresh(base, refresh_token)
    hass_tokens = {
        "access_token": tokens["access_token"],
        "token_type": "Bearer",
        "expires_in": tokens["expires_in"],
        "expires": int(time.time() * 1000) + int(tokens["expires_in"]) * 1000,
        "refresh_token": refresh_token,
        "hassUrl": base,
        "clientId": CLIENT_ID,
    }
    # Chromium's helpers may still write into the profile while it goes: never fail on cleanup.
    with tempfile.TemporaryDirectory(prefix="plexsec-chromium-", ignore_cleanup_errors=True) as profile:
        proc, port = await asyncio.to_thread(_start_chromium, profile)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    pages = [t for t in await resp.json() if t.get("type") == "page"]
                async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    page = DevTools(ws)
                    await page.send("Page.enable")
                    await page.send("Page.navigate", url=base + "/")
                    await asyncio.sleep(1)
                    await page.evaluate(f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(hass_tokens))})")
                    await page.send("Page.navigate", url=base + DASHBOARD)
                    deadline = time.monotonic() + timeout
                    text = ""
                    while time.monotonic() < deadline:
                        text = str(await page.evaluate(DEEP_TEXT) or "")
                        if all(name in text for name in EXPECTED) and _failed_logins(text) > 0:
                            break
                        await asyncio.sleep(1)
                    else:
                        raise SystemExit(f"the dashboard did not render its cards with values:\n{text[:2000]}")
                    await asyncio.sleep(1.5)  # let the last card finish drawing
                    shot = await page.send("Page.captureScreenshot", format="png")
                    await asyncio.to_thread(out.write_bytes, base64.b64decode(shot["data"]))
                    if helper is not None:
                        await threat_view(page, *helper, threat_out)
                    return text
        finally:
            # The whole process group: the browser and its renderer and crash-handler children.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)


def _failed_logins(text: str) -> int:
    """The number shown under "Failed logins (24 h)" (the tile's state line)."""
    found = re.search(r"Failed logins \(24 h\)\n(\d+)", text)
    return int(found.group(1)) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://localhost:8123")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--helper-url")
    parser.add_argument("--helper-token")
    parser.add_argument("--plex-log", type=Path)
    parser.add_argument("--threat-out", type=Path)
    args = parser.parse_args()
    helper = (args.helper_url, args.helper_token, args.plex_log) if args.helper_url and args.plex_log else None
    text = asyncio.run(
        screenshot(
            args.url,
            Path(args.token_file).read_text().strip(),
            args.out,
            args.timeout,
            helper=helper,
            threat_out=args.threat_out,
        )
    )
    print(f"dashboard rendered: {', '.join(EXPECTED)}; failed logins shown: {_failed_logins(text)}")
    print(f"screenshot: {args.out}")


if __name__ == "__main__":
    main()
