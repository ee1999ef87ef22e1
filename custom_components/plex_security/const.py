"""Constants of the Plex Security integration."""

from datetime import timedelta
from typing import Final

DOMAIN: Final = "plex_security"
MANUFACTURER: Final = "Plex Security"
MODEL: Final = "Host helper"
DEFAULT_PORT: Final = 8788
CONF_VERIFY_SSL: Final = "verify_ssl"
CONF_FINGERPRINT: Final = "fingerprint"  # pinned SHA-256 of a self-signed helper certificate
CONF_SCAN_INTERVAL: Final = "scan_interval"
CONF_LONG_POLL: Final = "long_poll"
CONF_ATTACK_WINDOW: Final = "attack_window"
DEFAULT_SCAN_INTERVAL: Final = 30
DEFAULT_ATTACK_WINDOW: Final = 10  # minutes
SCAN_INTERVAL: Final = timedelta(seconds=DEFAULT_SCAN_INTERVAL)
REQUEST_TIMEOUT: Final = 10
LONG_POLL_SECONDS: Final = 30

EVENT_SUSPICIOUS_ACCESS: Final = "plex_security_suspicious_access"
# The helper's alert vocabulary (its model.AlertKind) and each kind's verdict: "ban" (a hostile
# source, banned or recorded as such in monitor mode), "watch" (worth a look) or "info" (a ban
# made or lifted). tests/test_contract.py holds this copy to the helper's; titles live in the
# translations (entity.event.suspicious_access...event_type.state).
VERDICT_BAN: Final = "ban"
VERDICT_WATCH: Final = "watch"
VERDICT_INFO: Final = "info"
ALERT_VERDICTS: Final[dict[str, str]] = {
    "failed_login_burst": VERDICT_BAN,
    "failed_login_slow": VERDICT_BAN,
    "network_spread": VERDICT_BAN,
    "probe": VERDICT_BAN,
    "exploit": VERDICT_BAN,
    "scan": VERDICT_BAN,
    "flood": VERDICT_BAN,
    "log_injection": VERDICT_BAN,
    "sensitive_request": VERDICT_WATCH,
    "new_location": VERDICT_WATCH,
    "auth_bypass": VERDICT_WATCH,
    "new_country": VERDICT_WATCH,
    "impossible_travel": VERDICT_WATCH,
    "account_sharing": VERDICT_WATCH,
    "hosting_stream": VERDICT_WATCH,
    "new_device": VERDICT_WATCH,
    "banned": VERDICT_INFO,
    "unbanned": VERDICT_INFO,
}
EVENT_TYPES: Final = tuple(ALERT_VERDICTS)
STORAGE_VERSION: Final = 1

ATTR_IP: Final = "ip"
ATTR_DURATION: Final = "duration"
ATTR_REASON: Final = "reason"
ATTR_FORCE: Final = "force"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"

SERVICE_BAN_IP: Final = "ban_ip"
SERVICE_UNBAN_IP: Final = "unban_ip"
SERVICE_ALLOW_IP: Final = "allow_ip"
SERVICE_RUN_AUDIT: Final = "run_audit"
SERVICE_LOOKUP_IP: Final = "lookup_ip"
SERVICE_STOP_STREAM: Final = "stop_stream"
SERVICE_REMOVE_DEVICE: Final = "remove_device"
ATTR_SESSION_ID: Final = "session_id"
ATTR_MESSAGE: Final = "message"
ATTR_DEVICE_ID: Final = "device_id"

# The helper's firewall modes and rate profiles (its firewall.nft.PROFILES; tests/test_contract.py).
FIREWALL_MODES: Final = ("monitor", "enforce")
FIREWALL_PROFILES: Final = ("default", "strict", "off")
# The firewall state sensor's states.
FIREWALL_STATES: Final = ("off", "monitor", "enforcing", "error")

# The repair raised while the helper refuses Home Assistant's address (throttle or client list).
REFUSED_ISSUE: Final = "helper_refuses"
