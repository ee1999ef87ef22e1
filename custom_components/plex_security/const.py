"""Constants of the Plex Security integration."""

from datetime import timedelta
from typing import Final

DOMAIN: Final = "plex_security"
MANUFACTURER: Final = "Plex Security"
MODEL: Final = "Host helper"
DEFAULT_PORT: Final = 8788
CONF_VERIFY_SSL: Final = "verify_ssl"
SCAN_INTERVAL: Final = timedelta(seconds=30)
REQUEST_TIMEOUT: Final = 10
