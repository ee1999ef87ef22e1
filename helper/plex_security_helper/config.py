"""Helper configuration: a TOML file validated with voluptuous into a frozen dataclass."""

from __future__ import annotations

import ipaddress
import os
import secrets
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import voluptuous as vol

from .thresholds import THRESHOLDS, DetectConfig

NATIVE_PLEX_DIR = "/var/lib/plexmediaserver/Library/Application Support/Plex Media Server"
DEFAULT_PORT = 8788
TOKEN_BYTES = 32


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid."""


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """Where the API listens and the secret it demands."""

    host: str
    port: int
    token: str
    clients: tuple[str, ...] = ()  # when set, only these addresses/networks may call the API
    throttle: bool = True  # block an address after repeated wrong tokens
    ban_token_guessers: bool = False  # and ban it in the firewall too (policy permitting)
    max_wait: int = 60  # longest long-poll /alerts accepts, in seconds
    rate_limit: int = 50  # requests a second per address (bursts of twice that); 0: no limit
    tls_cert: Path | None = None  # serve HTTPS with this certificate and key
    tls_key: Path | None = None


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """The Plex log the monitor follows."""

    log_path: Path
    poll_interval: float
    backfill: bool
    # Reverse proxies whose forwarded address is believed (never judged, never banned).
    trusted_proxies: tuple[str, ...] = ()


DEFAULT_ALLOW = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
    "fe80::/10",
)


@dataclass(frozen=True, slots=True)
class FirewallConfig:
    """How verdicts become dropped packets (see docs/configuration.md)."""

    backend: str = "nft"  # nft | fail2ban | none
    mode: str = "monitor"  # monitor (record what would be banned) | enforce
    plex_port: int = 32400
    profile: str = "default"  # default | strict | off
    new_per_minute: int | None = None  # overrides of the profile
    burst: int | None = None
    max_concurrent: int | None = None
    allow: tuple[str, ...] = DEFAULT_ALLOW
    protect: tuple[str, ...] = ()
    protect_gateway: bool = True
    ban_time: int = 3600
    ban_time_factor: float = 2.0
    max_ban_time: int = 7 * 86_400
    log_drops: bool = True
    netns: str | None = None
    geoip_mode: str | None = None  # allow | block
    geoip_source: Path | None = None
    geoip_countries: tuple[str, ...] = ()
    fail2ban_socket: str = "/var/run/fail2ban/fail2ban.sock"
    fail2ban_jail: str = "plex-security"
    fail2ban_client: str = "fail2ban-client"


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """What the audit reads and how often (see docs/configuration.md)."""

    plex_dir: Path
    interval: int = 3600
    plex_url: str = "http://127.0.0.1:32400"
    plex_token: str = ""  # a secret: never logged or returned
    docker: bool = True
    docker_socket: str = "/var/run/docker.sock"
    accept: dict[str, str] = field(default_factory=dict)  # finding key → the owner's reason
    cooldown: int = 30  # seconds between audits asked for through the API
    host: bool = True  # check this host's listening sockets (off when the helper runs in its own netns)
    proc_net: Path = Path("/proc/net")


@dataclass(frozen=True, slots=True)
class CrowdsecConfig:
    """CrowdSec's Local API: push our decisions as a machine, stream the fleet's as a bouncer."""

    lapi_url: str
    machine_id: str = ""  # push is on with a machine id and password, or with a TLS client certificate
    password: str = field(default="", repr=False)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ca_cert: Path | None = None
    bouncer_key: str = field(default="", repr=False)  # pull is on with a bouncer API key
    stream_interval: float = 10.0
    retry_max: float = 60.0  # longest wait between two push attempts while LAPI is down
    origins: tuple[str, ...] = ()  # stream only these LAPI origins (empty: all)

    @property
    def push(self) -> bool:
        """The helper pushes its decisions (machine credentials configured)."""
        return bool((self.machine_id and self.password) or self.tls_cert)

    @property
    def pull(self) -> bool:
        """The helper enforces the fleet's decisions (bouncer key configured)."""
        return bool(self.bouncer_key)


@dataclass(frozen=True, slots=True)
class GeoConfig:
    """Offline geo data: the packaged table, plus the owner's ``.mmdb`` files (MaxMind, DB-IP, IPinfo)."""

    mmdb: tuple[Path, ...] = ()
    cache_size: int = 65_536


@dataclass(frozen=True, slots=True)
class SessionsConfig:
    """How Plex's current sessions are read and judged (see docs/configuration.md)."""

    enabled: bool = True  # needs a Plex token (audit.plex_token or Preferences.xml's PlexOnlineToken)
    interval: int = 30
    max_remote_streams_per_user: int = 0  # 0: no limit
    travel_hours: float = 6.0  # two countries this close in time ...
    travel_km: int = 2000  # ... and at least this far apart (centroids) make impossible travel
    history_days: int = 180
    hosting_alerts: bool = True


@dataclass(frozen=True, slots=True)
class PlexTvConfig:
    """The owner's plex.tv account (opt-in: it uses the server's own plex.tv token)."""

    enabled: bool = False
    url: str = "https://plex.tv"
    interval: int = 3600  # seconds between looks at the account's devices
    inactive_days: int = 90
    device_stale_days: int = 180


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """Plex's webhooks, posted to ``/api/v1/webhook/<secret>``; off while the secret is empty."""

    secret: str = ""
    max_bytes: int = 256 * 1024


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the helper reads from its TOML file."""

    helper_id: str
    api: ApiConfig
    monitor: MonitorConfig
    detect: DetectConfig
    database: Path
    retention_days: int
    audit: AuditConfig
    firewall: FirewallConfig = FirewallConfig()
    crowdsec: CrowdsecConfig | None = None
    geo: GeoConfig = GeoConfig()
    sessions: SessionsConfig = SessionsConfig()
    plex_tv: PlexTvConfig = PlexTvConfig()
    webhook: WebhookConfig = WebhookConfig()


def _detect_section() -> str:
    """The ``[detect]`` section of a new config: every threshold with its meaning."""
    return "\n".join(f"# {t.help}\n{name} = {t.default}" for name, t in THRESHOLDS.items()) + "\n"


def _nonempty(value: Any) -> str:
    text = vol.Coerce(str)(value)
    if not text.strip():
        raise vol.Invalid("must not be empty")
    return str(text)


def _token(value: Any) -> str:
    text = _nonempty(value)
    if len(text) < 16:
        raise vol.Invalid("token must be at least 16 characters")
    return text


def _network(value: Any) -> str:
    text = _nonempty(value)
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise vol.Invalid(f"{text!r} is not an IP address or CIDR network") from None


_NETNS = vol.All(str, vol.Match(r"^[A-Za-z0-9_.-]{1,64}$", msg="a network namespace name"))
_COUNTRY = vol.All(str, vol.Match(r"^[A-Za-z]{2}$", msg="a two-letter country code"), vol.Lower)

FIREWALL_SCHEMA = {
    vol.Optional("backend", default="nft"): vol.In(["nft", "fail2ban", "none"]),
    vol.Optional("mode", default="monitor"): vol.In(["monitor", "enforce"]),
    vol.Optional("plex_port", default=32400): vol.All(int, vol.Range(min=1, max=65535)),
    vol.Optional("profile", default="default"): vol.In(["default", "strict", "off"]),
    vol.Optional("new_per_minute"): vol.All(int, vol.Range(min=1, max=1_000_000)),
    vol.Optional("burst"): vol.All(int, vol.Range(min=1, max=1_000_000)),
    vol.Optional("max_concurrent"): vol.All(int, vol.Range(min=1, max=1_000_000)),
    vol.Optional("allow", default=list(DEFAULT_ALLOW)): [_network],
    vol.Optional("protect", default=[]): [_network],
    vol.Optional("protect_gateway", default=True): bool,
    vol.Optional("ban_time", default=3600): vol.All(int, vol.Range(min=60, max=365 * 86_400)),
    vol.Optional("ban_time_factor", default=2.0): vol.All(vol.Coerce(float), vol.Range(min=1.0, max=100.0)),
    vol.Optional("max_ban_time", default=7 * 86_400): vol.All(int, vol.Range(min=60, max=365 * 86_400)),
    vol.Optional("log_drops", default=True): bool,
    vol.Optional("netns"): _NETNS,
    vol.Optional("geoip_mode"): vol.In(["allow", "block"]),
    vol.Optional("geoip_source"): _nonempty,
    vol.Optional("geoip_countries", default=[]): [_COUNTRY],
    vol.Optional("fail2ban_socket", default="/var/run/fail2ban/fail2ban.sock"): _nonempty,
    vol.Optional("fail2ban_jail", default="plex-security"): vol.All(
        str, vol.Match(r"^[A-Za-z0-9_.-]{1,64}$", msg="a jail name")
    ),
    vol.Optional("fail2ban_client", default="fail2ban-client"): _nonempty,
}

_SECRET = vol.All(str, vol.Length(min=8, max=256), vol.Match(r"^[\x21-\x7e]+$", msg="printable, no spaces"))
CROWDSEC_SCHEMA = {
    vol.Required("lapi_url"): vol.All(
        str, vol.Match(r"^https?://[A-Za-z0-9.:\[\]-]{1,253}(:\d{1,5})?/?$", msg="an http(s)://host:port URL")
    ),
    vol.Optional("machine_id", default=""): vol.All(
        str, vol.Match(r"^[A-Za-z0-9_.-]{0,64}$", msg="a machine name as registered with cscli")
    ),
    vol.Optional("password", default=""): vol.Any("", _SECRET),
    vol.Optional("tls_cert"): _nonempty,
    vol.Optional("tls_key"): _nonempty,
    vol.Optional("ca_cert"): _nonempty,
    vol.Optional("bouncer_key", default=""): vol.Any("", _SECRET),
    vol.Optional("stream_interval", default=10.0): vol.All(vol.Coerce(float), vol.Range(min=1.0, max=3600.0)),
    vol.Optional("retry_max", default=60.0): vol.All(vol.Coerce(float), vol.Range(min=1.0, max=3600.0)),
    vol.Optional("origins", default=[]): [vol.All(str, vol.Match(r"^[A-Za-z0-9_.-]{1,64}$", msg="an origin name"))],
}

SCHEMA = vol.Schema(
    {
        vol.Required("helper"): {vol.Required("id"): _nonempty},
        vol.Required("api"): {
            vol.Optional("host", default="127.0.0.1"): _nonempty,
            vol.Optional("port", default=DEFAULT_PORT): vol.All(int, vol.Range(min=1, max=65535)),
            vol.Required("token"): _token,
            vol.Optional("clients", default=[]): [_network],
            vol.Optional("throttle", default=True): bool,
            vol.Optional("ban_token_guessers", default=False): bool,
            vol.Optional("max_wait", default=60): vol.All(int, vol.Range(min=1, max=300)),
            vol.Optional("rate_limit", default=50): vol.All(int, vol.Range(min=0, max=100_000)),
            vol.Optional("tls_cert"): _nonempty,
            vol.Optional("tls_key"): _nonempty,
        },
        vol.Required("monitor"): {
            vol.Required("log_path"): _nonempty,
            vol.Optional("poll_interval", default=0.05): vol.All(vol.Coerce(float), vol.Range(min=0.01, max=10.0)),
            vol.Optional("backfill", default=False): bool,
            vol.Optional("trusted_proxies", default=[]): [_network],
        },
        vol.Optional("detect", default={}): {
            vol.Optional(name, default=t.default): vol.All(int, vol.Range(min=t.low, max=t.high))
            for name, t in THRESHOLDS.items()
        },
        vol.Optional("firewall", default={}): FIREWALL_SCHEMA,
        vol.Optional("crowdsec"): CROWDSEC_SCHEMA,
        vol.Optional("audit", default={}): {
            vol.Optional("plex_dir"): _nonempty,
            vol.Optional("interval", default=3600): vol.All(int, vol.Range(min=300, max=7 * 86_400)),
            vol.Optional("plex_url", default="http://127.0.0.1:32400"): vol.All(
                str, vol.Match(r"^https?://[^\s/]+(:\d+)?/?$", msg="an http(s)://host:port URL")
            ),
            vol.Optional("plex_token", default=""): str,
            vol.Optional("docker", default=True): bool,
            vol.Optional("cooldown", default=30): vol.All(int, vol.Range(min=0, max=3600)),
            vol.Optional("host", default=True): bool,
            vol.Optional("docker_socket", default="/var/run/docker.sock"): _nonempty,
            vol.Optional("accept", default={}): {
                vol.All(str, vol.Length(min=1, max=200)): vol.All(str, vol.Length(min=1, max=500))
            },
        },
        vol.Optional("geo", default={}): {
            vol.Optional("mmdb", default=[]): vol.All([_nonempty], vol.Length(max=4)),
            vol.Optional("cache_size", default=65_536): vol.All(int, vol.Range(min=16, max=1_000_000)),
        },
        vol.Optional("sessions", default={}): {
            vol.Optional("enabled", default=True): bool,
            vol.Optional("interval", default=30): vol.All(int, vol.Range(min=1, max=3600)),
            vol.Optional("max_remote_streams_per_user", default=0): vol.All(int, vol.Range(min=0, max=100)),
            vol.Optional("travel_hours", default=6.0): vol.All(vol.Coerce(float), vol.Range(min=0.0, max=72.0)),
            vol.Optional("travel_km", default=2000): vol.All(int, vol.Range(min=100, max=20_000)),
            vol.Optional("history_days", default=180): vol.All(int, vol.Range(min=1, max=3650)),
            vol.Optional("hosting_alerts", default=True): bool,
        },
        vol.Optional("plex_tv", default={}): {
            vol.Optional("enabled", default=False): bool,
            vol.Optional("url", default="https://plex.tv"): vol.All(
                str, vol.Match(r"^https?://[^\s/]+(:\d+)?/?$", msg="an http(s)://host:port URL")
            ),
            vol.Optional("interval", default=3600): vol.All(int, vol.Range(min=1, max=7 * 86_400)),
            vol.Optional("inactive_days", default=90): vol.All(int, vol.Range(min=1, max=3650)),
            vol.Optional("device_stale_days", default=180): vol.All(int, vol.Range(min=1, max=3650)),
        },
        vol.Optional("webhook", default={}): {
            vol.Optional("secret", default=""): vol.Any(
                "", vol.All(str, vol.Match(r"^[A-Za-z0-9_-]{16,128}$", msg="16 to 128 letters, digits, _ or -"))
            ),
            vol.Optional("max_bytes", default=256 * 1024): vol.All(int, vol.Range(min=1024, max=16 * 1024 * 1024)),
        },
        vol.Required("storage"): {
            vol.Required("database"): _nonempty,
            vol.Optional("retention_days", default=30): vol.All(int, vol.Range(min=1, max=3650)),
        },
    }
)


def parse_config(raw: dict[str, Any], base_dir: Path) -> Config:
    """Validate a decoded TOML document; relative paths are taken from the file's folder."""
    try:
        data = SCHEMA(raw)
    except vol.Invalid as err:
        path = ".".join(str(p) for p in err.path) or "(top level)"
        raise ConfigError(f"invalid configuration at {path}: {err.msg}") from None

    def resolve(value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else base_dir / path

    if bool(data["api"].get("tls_cert")) != bool(data["api"].get("tls_key")):
        raise ConfigError("invalid configuration at api: tls_cert and tls_key go together")

    return Config(
        helper_id=data["helper"]["id"],
        api=ApiConfig(
            host=data["api"]["host"],
            port=data["api"]["port"],
            token=data["api"]["token"],
            clients=tuple(data["api"]["clients"]),
            throttle=data["api"]["throttle"],
            ban_token_guessers=data["api"]["ban_token_guessers"],
            max_wait=data["api"]["max_wait"],
            rate_limit=data["api"]["rate_limit"],
            tls_cert=resolve(data["api"]["tls_cert"]) if data["api"].get("tls_cert") else None,
            tls_key=resolve(data["api"]["tls_key"]) if data["api"].get("tls_key") else None,
        ),
        monitor=MonitorConfig(
            log_path=resolve(data["monitor"]["log_path"]),
            poll_interval=data["monitor"]["poll_interval"],
            backfill=data["monitor"]["backfill"],
            trusted_proxies=tuple(data["monitor"]["trusted_proxies"]),
        ),
        detect=DetectConfig(**data["detect"]),
        database=resolve(data["storage"]["database"]),
        retention_days=data["storage"]["retention_days"],
        firewall=_firewall(data["firewall"], resolve),
        crowdsec=_crowdsec(data["crowdsec"], resolve) if "crowdsec" in data else None,
        audit=_audit(data["audit"], resolve, resolve(data["monitor"]["log_path"])),
        geo=GeoConfig(mmdb=tuple(resolve(p) for p in data["geo"]["mmdb"]), cache_size=data["geo"]["cache_size"]),
        sessions=SessionsConfig(**data["sessions"]),
        plex_tv=PlexTvConfig(**data["plex_tv"]),
        webhook=WebhookConfig(**data["webhook"]),
    )


def _audit(raw: dict[str, Any], resolve: Callable[[str], Path], log_path: Path) -> AuditConfig:
    if "plex_dir" in raw:
        plex_dir = resolve(raw["plex_dir"])
    else:  # the folder that holds Logs/Plex Media Server.log
        plex_dir = log_path.parent.parent if log_path.parent.name == "Logs" else log_path.parent
    return AuditConfig(
        plex_dir=plex_dir,
        interval=raw["interval"],
        plex_url=raw["plex_url"],
        plex_token=raw["plex_token"],
        docker=raw["docker"],
        docker_socket=raw["docker_socket"],
        accept=dict(raw["accept"]),
        cooldown=raw["cooldown"],
        host=raw["host"],
    )


def _firewall(fw: dict[str, Any], resolve: Callable[[str], Path]) -> FirewallConfig:
    if fw.get("geoip_mode") and not fw["geoip_countries"]:
        raise ConfigError("invalid configuration at firewall.geoip_mode: needs geoip_countries")
    return FirewallConfig(
        backend=fw["backend"],
        mode=fw["mode"],
        plex_port=fw["plex_port"],
        profile=fw["profile"],
        new_per_minute=fw.get("new_per_minute"),
        burst=fw.get("burst"),
        max_concurrent=fw.get("max_concurrent"),
        allow=tuple(fw["allow"]),
        protect=tuple(fw["protect"]),
        protect_gateway=fw["protect_gateway"],
        ban_time=fw["ban_time"],
        ban_time_factor=fw["ban_time_factor"],
        max_ban_time=max(fw["max_ban_time"], fw["ban_time"]),
        log_drops=fw["log_drops"],
        netns=fw.get("netns"),
        geoip_mode=fw.get("geoip_mode"),
        geoip_source=resolve(fw["geoip_source"]) if fw.get("geoip_source") else None,
        geoip_countries=tuple(fw["geoip_countries"]),
        fail2ban_socket=fw["fail2ban_socket"],
        fail2ban_jail=fw["fail2ban_jail"],
        fail2ban_client=fw["fail2ban_client"],
    )


def _crowdsec(raw: dict[str, Any], resolve: Callable[[str], Path]) -> CrowdsecConfig:
    if bool(raw.get("tls_cert")) != bool(raw.get("tls_key")):
        raise ConfigError("invalid configuration at crowdsec: tls_cert and tls_key go together")
    if raw["password"] and not raw["machine_id"]:
        raise ConfigError("invalid configuration at crowdsec.password: needs machine_id")
    if raw["machine_id"] and not (raw["password"] or raw.get("tls_cert")):
        raise ConfigError("invalid configuration at crowdsec.machine_id: needs password or tls_cert and tls_key")
    if not (raw["machine_id"] or raw.get("tls_cert") or raw["bouncer_key"]):
        raise ConfigError(
            "invalid configuration at crowdsec: needs machine_id and password (push) or bouncer_key (pull)"
        )

    def path(key: str) -> Path | None:
        return resolve(raw[key]) if raw.get(key) else None

    return CrowdsecConfig(
        lapi_url=raw["lapi_url"].rstrip("/"),
        machine_id=raw["machine_id"],
        password=raw["password"],
        tls_cert=path("tls_cert"),
        tls_key=path("tls_key"),
        ca_cert=path("ca_cert"),
        bouncer_key=raw["bouncer_key"],
        stream_interval=raw["stream_interval"],
        retry_max=raw["retry_max"],
        origins=tuple(raw["origins"]),
    )


def load_config(path: Path) -> Config:
    """Read and validate the TOML file at *path*."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read configuration file {path}: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"configuration file {path} is not valid TOML: {err}") from None
    return parse_config(raw, path.resolve().parent)


def _toml_str(value: str) -> str:
    """Quote *value* as a TOML basic string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def default_config_text(
    *, token: str, log_path: str, database: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> str:
    """The commented TOML file that ``init`` writes."""
    return f"""\
# plex-security-helper configuration. Relative paths are relative to this file.

[helper]
# Stable identity of this helper; Home Assistant uses it as the device's unique id.
id = {_toml_str(uuid.uuid4().hex)}

[api]
# Address to listen on. Use the host's LAN address so that Home Assistant can reach it,
# or 127.0.0.1 when Home Assistant runs on this host.
host = {_toml_str(host)}
port = {port}
# Bearer token Home Assistant must present. Keep this file mode 0600.
token = {_toml_str(token)}
# Only these addresses may call the API at all (e.g. ["192.168.1.10"], Home Assistant); empty: any.
clients = []

[monitor]
# The live Plex log. Plex writes access lines only with "Enable debug logging" on.
log_path = {_toml_str(log_path)}
# Seconds between checks of the log for new lines.
poll_interval = 0.05
# At first start, read the rotated files (oldest first) and the whole live file instead of
# only new lines. Replayed history is reported; only the last day's attacks ban.
backfill = false
# Reverse proxies in front of Plex (SWAG, Nginx Proxy Manager, Traefik, a Docker bridge): their
# requests are judged by the client address they forward, and they are never banned.
trusted_proxies = []

[detect]
{_detect_section()}
[firewall]
# nft: the helper's own nftables table; fail2ban: ban through a running fail2ban's jail;
# none: no enforcement.
backend = "nft"
# monitor: record what would be banned, touch nothing. Switch to "enforce" once the
# bans listed in Home Assistant look right.
mode = "monitor"
plex_port = 32400
# Per-address limits on new connections to the Plex port: "default" leaves headroom for
# real clients, "strict" is 10 new per minute and 5 at once, "off" disables them.
profile = "default"
# Never banned (unless forced for one single address): the LAN, link-local, CGNAT, ULA.
allow = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "fc00::/7", "fe80::/10"]
# Never banned at all: Home Assistant, your reverse proxy, your admin machine.
protect = []
# First ban in seconds; each repeat within 30 days multiplies it by ban_time_factor, up to max_ban_time.
ban_time = 3600
ban_time_factor = 2.0
max_ban_time = 604800

[audit]
# Plex's data folder (Preferences.xml, Logs/); default: the folder above the log's Logs folder.
# plex_dir = "/var/lib/plexmediaserver/Library/Application Support/Plex Media Server"
# Hours between audits are interval/3600; the API can also ask for one.
interval = 3600
plex_url = "http://127.0.0.1:32400"
# The server's X-Plex-Token (Preferences.xml, PlexOnlineToken) unlocks the remote-access and
# preference checks through the API. Optional; never logged or returned.
plex_token = ""
# Audit the containers of this Docker engine (CIS Docker Benchmark section 5).
docker = true
docker_socket = "/var/run/docker.sock"

[audit.accept]
# Accepted deviations: finding key = "why". Keys are shown by `plex-security-helper audit`.
# "docker.5.10.host_network:plex" = "Plex needs host networking for local discovery"

[geo]
# Country of every address comes from data packaged with the helper (Regional Internet
# Registry assignments). Add MaxMind / DB-IP / IPinfo .mmdb files for better countries and for
# network owners (ASN: needed to spot streams from hosting networks).
mmdb = []

[sessions]
# Read Plex's current sessions every `interval` seconds (needs the Plex token) and alert on a
# user from a new country, impossible travel, and streams from hosting networks.
enabled = true
interval = 30
# Concurrent streams from outside the LAN one user may have (account sharing); 0: no limit.
max_remote_streams_per_user = 0
# Two countries at least travel_km apart within travel_hours: impossible travel.
travel_hours = 6.0
travel_km = 2000

[plex_tv]
# Opt-in: read the owner's plex.tv account (two-factor, shared users, devices) with the
# server's own plex.tv token. The token is never stored elsewhere, logged or returned.
enabled = false
inactive_days = 90
device_stale_days = 180

[webhook]
# Plex webhooks (Settings > Webhooks) to http://<helper>:<port>/api/v1/webhook/<secret>;
# 16-128 letters, digits, _ or -. Empty: off.
secret = ""

# [crowdsec]
# Share bans with a fleet through CrowdSec's Local API (README: "Fleet on CrowdSec").
# lapi_url = "http://192.168.1.5:8080"
# Push: this helper's bans go to LAPI as alerts with decisions (scenario plex-security/<kind>).
# Register it first on the LAPI host: cscli machines add plex-host-a --password '...'
# machine_id = "plex-host-a"
# password = "..."
# Or authenticate with a TLS client certificate (LAPI configured for TLS auth):
# tls_cert = "/etc/plex-security/lapi-client.pem"
# tls_key = "/etc/plex-security/lapi-client-key.pem"
# ca_cert = "/etc/plex-security/lapi-ca.pem"
# Pull: enforce the fleet's decisions in this helper's table: cscli bouncers add plex-host-a
# bouncer_key = "..."
# Seconds between two pulls of /v1/decisions/stream (CrowdSec's bouncers use 10).
# stream_interval = 10
# Longest wait (seconds) between two push attempts while LAPI is unreachable.
# retry_max = 60
# Only these LAPI decision origins (e.g. ["crowdsec", "cscli", "plex-security"]); empty: all,
# including the community blocklist ("CAPI", "lists").
# origins = []

[storage]
database = {_toml_str(database)}
# Days of events and alerts kept in the database.
retention_days = 30
"""


def write_new_config(
    path: Path, *, log_path: str | None = None, host: str = "127.0.0.1", database: str | None = None
) -> str:
    """Create a config file with a fresh token (mode 0600, never overwriting); return the token."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    text = default_config_text(
        token=token,
        log_path=log_path or f"{NATIVE_PLEX_DIR}/Logs/Plex Media Server.log",
        database=database or "plex-security.db",
        host=host,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return token
