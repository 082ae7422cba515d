"""Registered candidate sources (importing this package registers the built-in ones)."""

from loop.sources.generated import GeneratedSource
from loop.sources.pool import PoolSource

__all__ = ["GeneratedSource", "PoolSource"]
