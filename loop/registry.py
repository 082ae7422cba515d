"""Registries of the loop's roles. Imports nothing of the project but :mod:`core`.

A candidate source decides what the loop can pick from; a labeler decides what a pick is worth; a property
provider scores every candidate on one more outcome (a hull, a registered property model). Add one with one
class and one decorator line, then name it in the config (``source:``, ``labeler:`` or ``properties:``)::

    from loop.registry import LABELERS

    @LABELERS.register("toy")
    class ToyLabeler:  # see loop.roles.Labeler for the methods
        ...
"""

from __future__ import annotations

from typing import Any

from core.registry import Registry

#: name -> CandidateSource class; built with ``cls.from_config(config)`` (see :class:`loop.roles.CandidateSource`).
SOURCES: Registry[Any] = Registry("candidate source")
#: name -> Labeler class; built with ``cls.from_config(config)`` (see :class:`loop.roles.Labeler`).
LABELERS: Registry[Any] = Registry("labeler")
#: name -> property provider class; built with ``cls.from_config(config)`` (see :class:`loop.properties.base.Property`).
PROPERTIES: Registry[Any] = Registry("property")
