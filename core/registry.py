"""Named registries filled by decorators (strategies, generators, potentials, labelers, sources).

A registry maps a name to an object (usually a class or a factory). Registering a name twice is an
error, so two plug-ins cannot silently shadow each other::

    LABELERS: Registry[type[Labeler]] = Registry("labeler")

    @LABELERS.register("toy")
    class ToyLabeler: ...

This module imports nothing of the project.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from core.errors import ConfigError

T = TypeVar("T")


class DuplicateRegistrationError(ValueError):
    """A name was registered twice in one registry."""


_CHANGES = [0]


def _bump() -> None:
    _CHANGES[0] += 1


def registry_changes() -> int:
    """How many registrations and removals every registry of this process has seen: a cache of objects built from
    registered names (e.g. a campaign's roles) keys on it, so a test double registered or removed rebuilds it."""
    return _CHANGES[0]


class Registry(Generic[T]):
    """A name -> object mapping filled by :meth:`register`; lookups of unknown names raise ConfigError."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` (a second registration raises)."""
        if not name or not isinstance(name, str):
            raise ValueError(f"a {self.kind} needs a non-empty name")

        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; raises DuplicateRegistrationError when the name is taken."""
        if name in self._items:
            raise DuplicateRegistrationError(f"{self.kind} {name!r} is already registered ({self._items[name]!r})")
        self._items[name] = obj
        _bump()

    def remove(self, name: str) -> None:
        """Forget ``name`` (test clean-up); unknown names are ignored."""
        if self._items.pop(name, None) is not None:
            _bump()

    def get(self, name: str) -> T:
        """The object registered as ``name``; ConfigError naming the registered ones otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def items(self) -> list[tuple[str, T]]:
        """(name, object) pairs, sorted by name."""
        return sorted(self._items.items())
