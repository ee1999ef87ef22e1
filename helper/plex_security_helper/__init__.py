"""Plex Security helper: the privileged half that runs on the Plex host."""

__version__ = "0.1.0"
API_VERSION = 1
