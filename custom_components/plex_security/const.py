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
EVENT_TYPES: Final = (
    "failed_login_burst",
    "probe",
    "scan",
    "flood",
    "new_location",
    "auth_bypass",
    "banned",
    "unbanned",
    "new_country",
    "impossible_travel",
    "account_sharing",
    "hosting_stream",
    "new_device",
)
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
ATTR_SESSION_ID: Final = "session_id"
ATTR_MESSAGE: Final = "message"
