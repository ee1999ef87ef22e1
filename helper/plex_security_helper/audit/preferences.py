"""Preferences.xml: read it safely and judge every security-relevant key.

The file holds the server's plex.tv token, so evidence never quotes secret attributes, and a
file others can read is itself a finding. A missing, malformed or hostile file (a DOCTYPE
with entities: the billion-laughs shape) is a finding, never a crash.
"""

from __future__ import annotations

import ipaddress
import shlex
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

from ..logwatch.detect import LOCAL_NETWORKS
from .findings import Finding, Severity

MAX_BYTES = 1 << 20
# Networks that are the owner's own: anything else in allowedNetworks is the internet.
_PRIVATE = LOCAL_NETWORKS
_REF_SETTINGS = "https://support.plex.tv/articles/200890058-authentication-for-local-network-access/"


def read_preferences(path: Path) -> tuple[dict[str, str] | None, list[Finding]]:
    """The attributes of ``<Preferences/>``, or None with a finding saying why not."""
    subject = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None, [
            Finding(
                "plex.preferences_missing",
                Severity.MEDIUM,
                "Preferences.xml not found",
                f"{path} does not exist",
                "Point [audit] plex_dir at the Plex data folder (the one holding Preferences.xml).",
                subject=subject,
            )
        ]
    except OSError as err:
        return None, [
            Finding(
                "plex.preferences_unreadable",
                Severity.MEDIUM,
                "Preferences.xml cannot be read",
                f"{path}: {err.strerror}",
                "Give the helper read access to Preferences.xml (it runs as root or in the plex group).",
                subject=subject,
            )
        ]
    if len(data) > MAX_BYTES:
        return None, [_malformed(path, f"larger than {MAX_BYTES} bytes")]
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        # Plex never writes a DOCTYPE; entity declarations are an attack on parsers.
        return None, [_malformed(path, "contains a DOCTYPE or ENTITY declaration (refused, not parsed)")]
    try:
        root = ET.fromstring(data)  # noqa: S314 - declarations refused above, size bounded
    except ET.ParseError as err:
        return None, [_malformed(path, f"not well-formed XML: {err}")]
    if root.tag != "Preferences":
        return None, [_malformed(path, f"root element is <{root.tag[:40]}>, not <Preferences>")]
    return {str(k): str(v) for k, v in root.attrib.items()}, []


def _malformed(path: Path, why: str) -> Finding:
    return Finding(
        "plex.preferences_malformed",
        Severity.HIGH,
        "Preferences.xml is malformed",
        f"{path}: {why}",
        "Stop Plex, restore Preferences.xml from a backup (or let Plex recreate it), then start Plex.",
        subject=str(path),
    )


def file_mode_findings(prefs_path: Path, logs_dir: Path) -> list[Finding]:
    """Preferences.xml holds the server token and the logs hold addresses and user names."""
    found: list[Finding] = []
    try:
        mode = stat.S_IMODE(prefs_path.stat().st_mode)
    except OSError:
        mode = None
    if mode is not None and mode & (stat.S_IROTH | stat.S_IWOTH):
        found.append(
            Finding(
                "plex.preferences_world_readable",
                Severity.HIGH,
                "Preferences.xml is readable by every local user",
                f"{prefs_path} has mode {mode:04o}; it holds the server's plex.tv token",
                "Make it readable by the Plex user only.",
                subject=str(prefs_path),
                fix=(f"chmod 600 {shlex.quote(str(prefs_path))}",),
            )
        )
    elif mode is not None and mode & (stat.S_IRGRP | stat.S_IWGRP):
        found.append(
            Finding(
                "plex.preferences_group_readable",
                Severity.LOW,
                "Preferences.xml is readable by its group",
                f"{prefs_path} has mode {mode:04o}",
                "Unless another service in the group needs it, make it readable by the Plex user only.",
                subject=str(prefs_path),
                fix=(f"chmod 600 {shlex.quote(str(prefs_path))}",),
            )
        )
    try:
        log_mode = stat.S_IMODE(logs_dir.stat().st_mode)
    except OSError:
        log_mode = None
    if log_mode is not None and log_mode & stat.S_IROTH:
        found.append(
            Finding(
                "plex.logs_world_readable",
                Severity.MEDIUM,
                "The Plex log folder is readable by every local user",
                f"{logs_dir} has mode {log_mode:04o}; the logs hold client addresses, user names and,"
                " with logTokens, tokens",
                "Remove access for other users.",
                subject=str(logs_dir),
                fix=(f"chmod o-rwx {shlex.quote(str(logs_dir))}",),
            )
        )
    return found


def _parse_allowed(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    text = entry.strip()
    if "/" in text:
        addr, mask = text.split("/", 1)
        if "." in mask:  # 192.168.1.0/255.255.255.0, as Plex's settings page writes it
            mask = str(ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen)
        return ipaddress.ip_network(f"{addr}/{mask}", strict=False)
    return ipaddress.ip_network(text, strict=False)


def allowed_networks_findings(value: str) -> list[Finding]:
    """``allowedNetworks``: clients from these networks act as the owner without a password."""
    found: list[Finding] = []
    public: list[str] = []
    wide: list[str] = []
    invalid: list[str] = []
    for entry in (e for e in value.split(",") if e.strip()):
        try:
            net = _parse_allowed(entry)
        except ValueError:
            invalid.append(entry.strip()[:60])
            continue
        inside = any(net.version == p.version and net.subnet_of(p) for p in _PRIVATE)  # type: ignore[arg-type]
        if not inside:
            public.append(str(net))
        elif net.version == 4 and net.prefixlen < 16:
            wide.append(str(net))
    if public:
        found.append(
            Finding(
                "plex.allowed_networks_public",
                Severity.CRITICAL,
                "Internet addresses may use Plex without a password",
                f"allowedNetworks lists {', '.join(public)}: every client there acts as the server owner",
                "Plex → Settings → Network → 'List of IP addresses and networks that are allowed without auth':"
                " keep only your LAN (e.g. 192.168.1.0/24).",
                references=(_REF_SETTINGS,),
            )
        )
    if wide:
        found.append(
            Finding(
                "plex.allowed_networks_wide",
                Severity.MEDIUM,
                "The password-free network is wider than a LAN",
                f"allowedNetworks lists {', '.join(wide)}",
                "Narrow it to the subnet your devices are in.",
                references=(_REF_SETTINGS,),
            )
        )
    if invalid:
        found.append(
            Finding(
                "plex.allowed_networks_invalid",
                Severity.LOW,
                "allowedNetworks has entries Plex may misread",
                f"not networks: {', '.join(invalid)}",
                "Use addresses or CIDR networks separated by commas.",
            )
        )
    return found


def preferences_findings(prefs: dict[str, str]) -> list[Finding]:
    """Every key of the reference table, judged."""
    found = allowed_networks_findings(prefs.get("allowedNetworks", ""))
    secure = prefs.get("secureConnections", "1")
    if secure == "2":
        found.append(
            Finding(
                "plex.secure_connections_disabled",
                Severity.HIGH,
                "Secure connections are disabled",
                "secureConnections=2: tokens and media travel unencrypted",
                "Plex → Settings → Network → Secure connections: Required (or at least Preferred).",
            )
        )
    elif secure != "0":
        found.append(
            Finding(
                "plex.secure_connections_preferred",
                Severity.LOW,
                "Secure connections are only preferred",
                f"secureConnections={secure[:10]}: clients may fall back to plain HTTP",
                "Set Secure connections to Required where all your clients support it.",
            )
        )
    if prefs.get("disableRemoteSecurity") == "1":
        found.append(
            Finding(
                "plex.remote_security_disabled",
                Severity.CRITICAL,
                "Remote security is disabled",
                "disableRemoteSecurity=1: a legacy switch that lets clients in without authentication",
                "Stop Plex, remove the disableRemoteSecurity attribute from Preferences.xml, start Plex.",
            )
        )
    if prefs.get("logDebug", "0") != "1":
        found.append(
            Finding(
                "plex.debug_logging_off",
                Severity.HIGH,
                "Plex debug logging is off: the monitor is blind",
                "logDebug is not 1, so Plex writes no access lines and no failed login can be seen",
                "Plex → Settings → General → Enable debug logging (Plex → Troubleshooting on newer servers).",
            )
        )
    if prefs.get("logTokens") == "1":
        found.append(
            Finding(
                "plex.log_tokens",
                Severity.HIGH,
                "Plex writes tokens into its logs",
                "logTokens=1",
                "Turn 'Log tokens' off (Settings → Troubleshooting); rotate tokens that were logged.",
            )
        )
    transcoder = sorted(k for k, v in prefs.items() if k.startswith("TranscoderH264Options") and v.strip())
    if transcoder:
        found.append(
            Finding(
                "plex.transcoder_options_set",
                Severity.HIGH,
                "Hidden transcoder options are set",
                f"{', '.join(transcoder)} non-empty: before 1.43.3.10861 these could be set over the network"
                " without a token (CVE-2026-96656, September 2026 advisory)",
                "Unless you set them yourself, stop Plex, remove them from Preferences.xml, update Plex.",
            )
        )
    custom = prefs.get("customConnections", "")
    plain = [c.strip()[:80] for c in custom.split(",") if c.strip().lower().startswith("http://")]
    if plain:
        found.append(
            Finding(
                "plex.custom_connections_plain_http",
                Severity.MEDIUM,
                "A published custom connection uses plain HTTP",
                f"customConnections: {', '.join(plain)}",
                "Publish https:// URLs only (Settings → Network → Custom server access URLs).",
            )
        )
    published = prefs.get("PublishServerOnPlexOnlineKey") == "1"
    if published and prefs.get("ManualPortMappingMode", "0") != "1":
        found.append(
            Finding(
                "plex.upnp_mapping",
                Severity.MEDIUM,
                "Remote access uses automatic (UPnP) port mapping",
                "ManualPortMappingMode is not 1: the router opens a port whenever Plex asks"
                + (
                    f" (last mapped port {prefs['LastAutomaticMappedPort'][:6]})"
                    if prefs.get("LastAutomaticMappedPort")
                    else ""
                ),
                "Forward one port by hand (Settings → Remote Access → Manually specify public port) and turn UPnP"
                " off on the router.",
            )
        )
    if prefs.get("DlnaEnabled") == "1":
        found.append(
            Finding(
                "plex.dlna_enabled",
                Severity.MEDIUM,
                "DLNA is on",
                "DlnaEnabled=1: the DLNA server (TCP 32469, UDP 1900) has no Plex authentication",
                "Turn DLNA off unless a LAN device needs it, and never forward its ports.",
            )
        )
    if prefs.get("GdmEnabled", "1") == "1":
        found.append(
            Finding(
                "plex.gdm_enabled",
                Severity.LOW,
                "LAN discovery (GDM) is on",
                "GdmEnabled=1: UDP 32410-32414 answer on the LAN",
                "Fine on a LAN; make sure these ports are never forwarded.",
            )
        )
    if prefs.get("DisableTLSv1_0") != "1":
        found.append(
            Finding(
                "plex.tls10_allowed",
                Severity.LOW,
                "TLS 1.0 and 1.1 are accepted",
                "DisableTLSv1_0 is not 1",
                "Turn on 'Disable TLS v1.0' unless an old client needs it (Settings → Network, advanced).",
            )
        )
    if prefs.get("RelayEnabled", "1") == "1":
        found.append(
            Finding(
                "plex.relay_enabled",
                Severity.INFO,
                "Relay through plex.tv is on",
                "RelayEnabled=1: clients fall back to Plex's relay when the direct port fails",
                "Informational; turn it off if your port is forwarded and you want no third-party path.",
            )
        )
    if prefs.get("WebHooksEnabled") == "1":
        found.append(
            Finding(
                "plex.webhooks_enabled",
                Severity.INFO,
                "Webhooks are on",
                "WebHooksEnabled=1",
                "Informational: check the webhook URLs under Settings → Webhooks.",
            )
        )
    if prefs.get("allowMediaDeletion") == "1":
        found.append(
            Finding(
                "plex.media_deletion_allowed",
                Severity.INFO,
                "Clients may delete media",
                "allowMediaDeletion=1",
                "Informational: anyone with owner rights can delete files.",
            )
        )
    return found


def public_facts(prefs: dict[str, str]) -> dict[str, object]:
    """Non-secret facts for the UI."""
    return {
        "debug_logging": prefs.get("logDebug") == "1",
        "remote_access_published": prefs.get("PublishServerOnPlexOnlineKey") == "1",
        "ipv6": prefs.get("EnableIPv6") == "1",
        "claimed_locally": bool(prefs.get("PlexOnlineToken")),  # presence only, never the value
        "machine_identifier": prefs.get("ProcessedMachineIdentifier", "")[:64] or None,
    }
