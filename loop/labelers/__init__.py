"""Registered labelers (importing this package registers the built-in ones)."""

from loop.labelers.relax import RelaxLabeler
from loop.labelers.replay import ReplayLabeler

__all__ = ["RelaxLabeler", "ReplayLabeler"]
