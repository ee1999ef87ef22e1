"""Plex webhooks at the secret URL: device.new is an alert before the answer; the rest is refused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helperproc import HelperProcess

SECRET = "webhook-secret-0123456789"
BOUNDARY = "----plexwebhook18"


def multipart(parts: dict[str, tuple[str, bytes]]) -> bytes:
    """A multipart/form-data body as Plex sends it: name → (content type, bytes)."""
    out = b""
    for name, (ctype, data) in parts.items():
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
        )
        out += data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def post(helper: HelperProcess, secret: str, body: bytes, ctype: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(f"{helper.url}/api/v1/webhook/{secret}", data=body, method="POST")
    req.add_header("Content-Type", ctype or f"multipart/form-data; boundary={BOUNDARY}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def payload(event: str, **player: Any) -> bytes:
    # The documented webhook payload (Plex support: "Webhooks"), addresses from documentation ranges.
    return json.dumps(
        {
            "event": event,
            "user": True,
            "owner": True,
            "Account": {"id": 1, "title": "owner"},
            "Server": {"title": "Home", "uuid": "abc"},
            "Player": {"local": False, "publicAddress": "203.0.113.77", "title": "Firefox", "uuid": "dev-1", **player},
        }
    ).encode()


@pytest.fixture
def hooked(tmp_path: Path, socket_enabled: None) -> Iterator[HelperProcess]:
    helper = HelperProcess(tmp_path, extra_config=f'[webhook]\nsecret = "{SECRET}"\nmax_bytes = 4096\n')
    helper.start()
    yield helper
    helper.stop()


def test_device_new_is_an_alert_before_the_answer(hooked: HelperProcess) -> None:
    status, body = post(hooked, SECRET, multipart({"payload": ("application/json", payload("device.new"))}))
    assert status == 200 and body["accepted"] == "device.new" and body["seq"] >= 1
    alerts = hooked.get("/api/v1/alerts?after=0")["alerts"]  # no wait: it is already stored
    (alert,) = [a for a in alerts if a["seq"] == body["seq"]]
    assert (alert["kind"], alert["ip"]) == ("new_device", "203.0.113.77")
    assert alert["detail"]["device"] == "Firefox" and alert["detail"]["user"] == "owner"
    assert alert["detail"]["verdict"] == "watch" and "country" in alert["detail"]


def test_other_events_and_a_thumb_are_accepted_without_an_alert(hooked: HelperProcess) -> None:
    body = multipart(
        {"payload": ("application/json", payload("media.play")), "thumb": ("image/jpeg", b"\xff\xd8" + b"0" * 500)}
    )
    assert post(hooked, SECRET, body) == (200, {"accepted": "media.play", "seq": None})
    assert hooked.get("/api/v1/alerts?after=0")["alerts"] == []


def test_refused_posts(hooked: HelperProcess) -> None:
    good = multipart({"payload": ("application/json", payload("device.new"))})
    assert post(hooked, "wrong-secret-0123456789", good)[0] == 404
    assert post(hooked, SECRET[:-1], good)[0] == 404
    assert post(hooked, SECRET, good, ctype="application/json")[0] == 415
    assert post(hooked, SECRET, multipart({"payload": ("application/json", b"{not json")}))[0] == 400
    assert post(hooked, SECRET, multipart({"payload": ("application/json", b'{"event": "x y"}')}))[0] == 400
    assert post(hooked, SECRET, multipart({"other": ("text/plain", b"x")}))[0] == 400
    big = multipart({"payload": ("application/json", payload("device.new")), "thumb": ("image/jpeg", b"0" * 8000)})
    assert post(hooked, SECRET, big)[0] == 413
    assert hooked.get("/api/v1/alerts?after=0")["alerts"] == []


def test_off_without_a_secret(helper: HelperProcess) -> None:
    assert post(helper, "", multipart({"payload": ("application/json", payload("device.new"))}))[0] == 404
    assert post(helper, SECRET, multipart({"payload": ("application/json", payload("device.new"))}))[0] == 404
