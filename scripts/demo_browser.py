"""The browser test: headless Chromium logs into the demo Home Assistant, opens the Plex Security
dashboard, checks that the threat cards show values, and saves a screenshot.

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


async def screenshot(base: str, refresh_token: str, out: Path, timeout: float) -> str:
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
    args = parser.parse_args()
    text = asyncio.run(screenshot(args.url, Path(args.token_file).read_text().strip(), args.out, args.timeout))
    print(f"dashboard rendered: {', '.join(EXPECTED)}; failed logins shown: {_failed_logins(text)}")
    print(f"screenshot: {args.out}")


if __name__ == "__main__":
    main()
