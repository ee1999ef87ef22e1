"""The demo's streaming story, played on the Plex emulator's sessions and plex.tv account.

alice watches from home abroad (192.0.2.0/24, which the demo's geo file puts in Germany),
then from Japan an hour's flight later (impossible travel, a new country); "family" is one
account streaming to three remote places at once (account sharing, over the demo's limit of
two). The plex.tv account has two-factor off and a friend who has not watched for 200 days.
Addresses are documentation ranges; the demo's .mmdb gives them countries.
"""

from __future__ import annotations

import asyncio
import time

from .plexemu import EmuSession, PlexState

# Documentation ranges → countries for the demo's geo file (scripts/demo writes it).
DEMO_COUNTRIES = {"192.0.2.0/24": "DE", "198.51.100.0/24": "US", "203.0.113.0/24": "JP", "2001:db8::/32": "AU"}

HOME = [
    EmuSession("demo-alice-1", "alice", "192.0.2.10", product="Plex for Android", title="Dark – S1E1"),
    EmuSession("demo-tv", "owner", "192.168.1.20", local=True, product="Plex for LG", title="The Office"),
]
TRAVELLER = EmuSession("demo-alice-2", "alice", "203.0.113.200", product="Plex Web", title="Dark – S1E2")
SHARED = [
    EmuSession("demo-family-1", "family", "198.51.100.40", product="Plex for Roku", title="Bluey"),
    EmuSession("demo-family-2", "family", "203.0.113.41", product="Plex for iOS", title="Severance"),
    EmuSession("demo-family-3", "family", "192.0.2.42", product="Plex Web", title="Shogun"),
]


def prepare_account(state: PlexState) -> None:
    """The plex.tv side: two-factor off, one active and one long-idle friend, an old device."""
    now = time.time()
    state.two_factor = False
    state.shared_users = {"alice": now - 3600, "family": now - 600, "old-friend": now - 200 * 86_400}
    state.devices = {"Living-room TV": now - 3600, "Alice's phone": now - 600, "Old laptop": now - 400 * 86_400}


async def play(state: PlexState, step: float = 15.0) -> None:
    """Home first; then the traveller; then the shared account; then over again (until cancelled)."""
    while True:
        state.sessions = list(HOME)
        await asyncio.sleep(step)
        state.sessions = [TRAVELLER, HOME[1]]
        await asyncio.sleep(step)
        state.sessions = [TRAVELLER, HOME[1], *SHARED]
        await asyncio.sleep(step * 4)
        state.sessions = [HOME[1]]
        await asyncio.sleep(step)
