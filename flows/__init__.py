"""Prefect flows: the discovery loop and one round. Orchestration only."""

from flows.discovery_loop import discovery_loop, discovery_round

__all__ = ["discovery_loop", "discovery_round"]
