"""Errors the user can act on. The CLI prints them as one line and exits non-zero."""


class DiscoveryError(Exception):
    """Base class: a clear, one-line message for the user; never a traceback wall."""


class ConfigError(DiscoveryError):
    """An invalid configuration value or file."""


class SeedError(DiscoveryError):
    """A seed structure that cannot be read or used (malformed file, unknown element, disorder)."""


class StoreUnavailableError(DiscoveryError):
    """The MongoDB store cannot be reached or started."""


class ModelNotFoundError(DiscoveryError):
    """No trained surrogate model is registered or its files are missing."""
