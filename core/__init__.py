"""The base layer: errors, paths, YAML files, validation messages, registries, torch threads.

Imports nothing else of the project; every other package may import it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ai-battery-materials")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
