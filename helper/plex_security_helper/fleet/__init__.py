"""The fleet on CrowdSec's Local API: push this helper's decisions, enforce everyone else's."""
