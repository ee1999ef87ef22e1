"""Following, parsing and judging the Plex log."""
