"""The generator registry. Imports nothing of the project but :mod:`core`.

Add a generator with one class and one decorator line::

    from generation.registry import GENERATORS

    @GENERATORS.register("my-generator")
    class MyGenerator:
        def generate(self, parents, config):  # -> list[generation.base.Candidate]
            ...

and list its name in ``generate.generators`` of the loop config.
"""

from __future__ import annotations

from typing import Any

from core.registry import Registry

#: name -> generator class (constructed without arguments; see :class:`generation.base.Generator`).
GENERATORS: Registry[Any] = Registry("generator")
