"""PUT /api/v1/firewall without a firewall backend: validation, persistence, who and when."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helper.contract import validate_response
from tests.helperproc import HelperProcess

NO_BACKEND = '[firewall]\nbackend = "none"\nmode = "monitor"\n'


@pytest.fixture
def plain_helper(tmp_path: Path, socket_enabled: None) -> Iterator[HelperProcess]:
    proc = HelperProcess(tmp_path / "helper", extra_config=NO_BACKEND)
    proc.start()
    yield proc
    proc.stop()


@pytest.mark.parametrize(
    "body",
    [{}, {"mode": "off"}, {"mode": "enforce", "origin": "detector"}, {"profile": "loose"}, {"mode": 1}, [], {"x": 1}],
)
def test_invalid_settings_are_refused(plain_helper: HelperProcess, body: Any) -> None:
    code, answer = plain_helper.call("PUT", "/api/v1/firewall", body)
    assert (code, answer["error"]) == (400, "invalid_body"), answer
    assert plain_helper.get("/api/v1/firewall")["mode"] == "monitor"


def test_a_change_is_applied_recorded_and_kept_across_a_restart(plain_helper: HelperProcess) -> None:
    h = plain_helper
    spec = h.get("/api/v1/openapi.json")
    first = h.get("/api/v1/firewall")
    validate_response(spec, "/api/v1/firewall", 200, first)
    assert (first["mode"], first["profile"], first["changed_by"]) == ("monitor", "default", None)

    before = time.time()
    code, changed = h.call(
        "PUT", "/api/v1/firewall", {"mode": "enforce", "profile": "strict", "origin": "home_assistant"}
    )
    assert code == 200, changed
    validate_response(spec, "/api/v1/firewall", 200, changed, method="put")
    assert (changed["mode"], changed["profile"], changed["changed_by"]) == ("enforce", "strict", "home_assistant")
    assert changed["changed_from"] == "127.0.0.1"
    assert before <= changed["changed_at"] <= time.time()
    assert changed["enforcing"] is False  # no backend: enforce has nothing to drive
    status = h.get("/api/v1/status")["firewall"]
    assert (status["mode"], status["profile"], status["limits"]["new_per_minute"]) == ("enforce", "strict", 10)

    h.stop()
    h.start()
    again = h.get("/api/v1/firewall")
    assert (again["mode"], again["profile"], again["changed_by"]) == ("enforce", "strict", "home_assistant")
    assert again["changed_at"] == changed["changed_at"]

    code, back = h.call("PUT", "/api/v1/firewall", {"mode": "monitor"})
    assert (code, back["mode"], back["profile"], back["changed_by"]) == (200, "monitor", "strict", "manual")
