"""Demo mode: realistic Plex traffic for trying the helper without a Plex server."""
