"""Run the real plex-security-helper as a child process on loopback for tests."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plex_security_helper.config import default_config_text
from plex_security_helper.tlscert import make_self_signed

TOKEN = "test-token-0123456789abcdef"
# The test helper's certificate is self-signed; tests check the fingerprint where it matters.
_UNVERIFIED = ssl._create_unverified_context()
START_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def merge_sections(base: str, extra: str) -> str:
    """*base* TOML text with each ``[section]`` that *extra* declares replaced by extra's version."""
    replaced = {line.strip() for line in extra.splitlines() if line.startswith("[")}
    kept: list[str] = []
    skipping = False
    for line in base.splitlines():
        if line.startswith("["):
            skipping = line.strip() in replaced
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n" + extra


@dataclass
class HelperProcess:
    """One helper with its own folder, config, log file and database."""

    root: Path
    port: int = field(default_factory=free_port)
    token: str = TOKEN
    extra_config: str = ""
    fixed_id: str | None = None
    tls: bool = False
    nofile: int | None = None  # the child's descriptor limit (soft and hard), as a unit would set it
    umask: int | None = None  # the child's umask (a manual `serve` or a container has 022)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.root / "helper.toml"

    @property
    def log_path(self) -> Path:
        return self.root / "Logs" / "Plex Media Server.log"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def cert_path(self) -> Path:
        return self.root / "helper-cert.pem"

    def new_certificate(self) -> None:
        """Make (or replace) the helper's self-signed certificate."""
        make_self_signed(self.cert_path, self.root / "helper-key.pem", ["127.0.0.1"])

    @property
    def helper_id(self) -> str:
        for line in self.config_path.read_text().splitlines():
            if line.startswith("id = "):
                return line.split('"')[1]
        raise AssertionError("no helper id in config")

    def write_config(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            text = default_config_text(
                token=self.token, log_path=str(self.log_path), database="state.db", port=self.port
            )
            if self.fixed_id is not None:
                text = "\n".join(
                    f'id = "{self.fixed_id}"' if line.startswith("id = ") else line for line in text.splitlines()
                )
            if self.tls:
                self.new_certificate()
                text = text.replace(
                    "\n[monitor]", 'tls_cert = "helper-cert.pem"\ntls_key = "helper-key.pem"\n\n[monitor]', 1
                )
            self.config_path.write_text(merge_sections(text, self.extra_config))

    def start(self) -> None:
        self.write_config()
        self.log_path.touch()
        stderr = (self.root / "helper.stderr").open("ab")
        nofile, umask = self.nofile, self.umask

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
            if umask is not None:
                os.umask(umask)

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plex_security_helper.cli", "serve", "--config", str(self.config_path)],
            stdout=stderr,
            stderr=stderr,
            preexec_fn=limit if (nofile, umask) != (None, None) else None,  # noqa: PLW1509 - no locks taken
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"helper exited with {self.proc.returncode}: {self.stderr()}")
            try:
                self.get("/api/v1/health", auth=False)
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise RuntimeError(f"helper did not answer within {START_TIMEOUT}s: {self.stderr()}")

    def stderr(self) -> str:
        path = self.root / "helper.stderr"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def append(self, *lines: str) -> None:
        with self.log_path.open("a", encoding="utf-8") as handle:
            handle.write("".join(f"{line}\n" for line in lines))

    def get(self, path: str, *, auth: bool = True, token: str | None = None) -> Any:
        req = urllib.request.Request(self.url + path)
        if auth:
            req.add_header("Authorization", f"Bearer {token or self.token}")
        with urllib.request.urlopen(req, timeout=10, context=_UNVERIFIED) as resp:
            return json.loads(resp.read())

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> tuple[int, Any]:
        """Any method; returns (status, decoded JSON body) for success and error answers alike."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30, context=_UNVERIFIED) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> Any:
        """Poll /status until *predicate(status)* holds; return that status."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status = self.get("/api/v1/status")
            if predicate(status):
                return status
            time.sleep(0.02)
        raise AssertionError(f"condition not met within {timeout}s; last status: {status}")
