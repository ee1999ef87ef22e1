"""The authenticated HTTP API (``/api/v1``) that Home Assistant polls."""
