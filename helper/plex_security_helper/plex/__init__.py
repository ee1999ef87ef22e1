"""Plex beyond the log: the server's sessions, the owner's plex.tv account, webhooks, offline geo data."""
