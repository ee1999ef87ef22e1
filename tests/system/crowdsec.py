"""CrowdSec's Local API from Debian's package, run by the test as LAPI only, all under its temp dir.

No agent (``-no-cs``: no acquisition, no parsers), no Central API (no ``online_client``), its
own config, SQLite database and credentials; machines and bouncers are registered with
``cscli -c`` against that config, exactly as an owner would on a LAPI host.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helperproc import free_port

START_TIMEOUT = 30.0


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def can_run() -> str | None:
    """Why CrowdSec tests cannot run here, or None."""
    for tool in ("crowdsec", "cscli", "crowdsec-firewall-bouncer"):
        if shutil.which(tool) is None:
            return f"needs {tool} (scripts/test installs crowdsec and crowdsec-firewall-bouncer)"
    return None


@dataclass
class Lapi:
    """One LAPI on 127.0.0.1:port with everything in *root*."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    tls: bool = False  # HTTPS with a test CA; machines may log in with a client certificate (OU "agent-ou")

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.root / "tls" / "ca.pem"

    def _make_ca(self) -> None:
        """A CA, LAPI's certificate for 127.0.0.1, and a machine's client certificate (OU agent-ou)."""
        tls = self.root / "tls"
        tls.mkdir(parents=True, exist_ok=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl(
            "req",
            "-x509",
            *ec,
            "-keyout",
            str(tls / "ca-key.pem"),
            "-out",
            str(self.ca),
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        )
        for name, subject, ext in (
            ("server", "/CN=lapi", "subjectAltName=IP:127.0.0.1"),
            ("machine", "/OU=agent-ou/CN=plex-tls", "extendedKeyUsage=clientAuth"),
        ):
            _openssl(
                "req", *ec, "-keyout", str(tls / f"{name}-key.pem"), "-out", str(tls / f"{name}.csr"), "-subj", subject
            )
            # Python 3.13 verifies strictly: key identifiers and key usage must be there.
            (tls / f"{name}.ext").write_text(f"{ext}\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n")
            _openssl(
                "x509", "-req", "-in", str(tls / f"{name}.csr"), "-CA", str(self.ca), "-CAkey", str(tls / "ca-key.pem"),
                "-CAcreateserial", "-out", str(tls / f"{name}.pem"), "-days", "2", "-extfile", str(tls / f"{name}.ext"),
            )  # fmt: skip

    def write_config(self) -> None:
        root = self.root
        for sub in ("data", "hub", "notifications"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "hub" / ".index.json").write_text("{}")
        (root / "simulation.yaml").write_text("simulation: false\n")
        # Alerts pushed with their own decisions keep them; this profile only covers the rest.
        (root / "profiles.yaml").write_text(
            'name: default_ip_remediation\nfilters:\n - Alert.Remediation == true && Alert.GetScope() == "Ip"\n'
            "decisions:\n - type: ban\n   duration: 4h\non_success: break\n"
        )
        tls = ""
        if self.tls:
            self._make_ca()
            d = root / "tls"
            tls = (
                f"    tls:\n      cert_file: {d}/server.pem\n      key_file: {d}/server-key.pem\n"
                f"      client_verification: VerifyClientCertIfGiven\n      ca_cert_path: {d}/ca.pem\n"
                "      agents_allowed_ou: [agent-ou]\n      bouncers_allowed_ou: [bouncer-ou]\n"
            )
        self.config.write_text(
            f"""common:
  daemonize: false
  log_media: file
  log_dir: {root}/
  log_level: info
  working_dir: .
config_paths:
  config_dir: {root}/
  data_dir: {root}/data/
  simulation_path: {root}/simulation.yaml
  hub_dir: {root}/hub/
  index_path: {root}/hub/.index.json
  notification_dir: {root}/notifications/
  plugin_dir: /usr/lib/crowdsec/plugins/
db_config:
  log_level: info
  type: sqlite
  db_path: {root}/data/crowdsec.db
  use_wal: true
api:
  client:
    insecure_skip_verify: {"true" if self.tls else "false"}
    credentials_path: {root}/cscli_credentials.yaml
  server:
    log_level: info
    listen_uri: 127.0.0.1:{self.port}
{tls}    profiles_path: {root}/profiles.yaml
    trusted_ips: [127.0.0.1]
prometheus:
  enabled: false
"""
        )
        # cscli talks to LAPI as a machine of its own for `decisions list/add/delete`.
        creds = self.root / "cscli_credentials.yaml"
        self.cscli("machines", "add", "test-cscli", "--password", secrets.token_hex(16), "-f", str(creds))
        if self.tls:
            creds.write_text(creds.read_text().replace("http://", "https://"))

    def start(self) -> None:
        if not self.config.exists():
            self.write_config()
        log = (self.root / "lapi.stdout").open("ab")
        self.proc = subprocess.Popen(["crowdsec", "-c", str(self.config), "-no-cs"], stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"crowdsec exited with {self.proc.returncode}: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"LAPI did not listen within {START_TIMEOUT}s: {self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        parts = [
            p.read_text(errors="replace")[-3000:]
            for p in (self.root / "lapi.stdout", self.root / "crowdsec.log")
            if p.exists()
        ]
        return "\n".join(parts)

    def cscli(self, *args: str) -> str:
        done = subprocess.run(
            ["cscli", "-c", str(self.config), *args], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"cscli {' '.join(args[:2])} failed: {done.stderr[-2000:]}")
        return done.stdout

    def add_machine(self, name: str) -> str:
        """Register a machine; return its password."""
        password = secrets.token_hex(16)
        self.cscli("machines", "add", name, "--password", password, "-f", "/dev/null")
        return password

    def add_bouncer(self, name: str) -> str:
        """Register a bouncer; return its API key."""
        key = secrets.token_hex(16)
        self.cscli("bouncers", "add", name, "-k", key)
        return key

    def decisions(self) -> list[dict[str, Any]]:
        """Active decisions as ``cscli decisions list -o json`` shows them, flattened with their alert's scenario."""
        alerts = json.loads(self.cscli("decisions", "list", "-o", "json") or "null") or []
        return [{**d, "alert_scenario": a.get("scenario")} for a in alerts for d in (a.get("decisions") or [])]
