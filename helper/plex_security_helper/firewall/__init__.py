"""Turning verdicts into dropped packets: targets, policy, nftables and fail2ban backends."""
