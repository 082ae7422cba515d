"""ai-battery-materials: closed-loop discovery of Li and Na battery materials (the command line)."""

from core import __version__

__all__ = ["__version__"]
