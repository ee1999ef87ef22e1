"""Audits of Plex's settings and version, the host's exposure and Docker containers."""
