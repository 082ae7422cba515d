"""ai-battery-materials: closed-loop discovery of Li and Na battery materials."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ai-battery-materials")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
