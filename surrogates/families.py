"""Loop surrogate families by name: how a round's model is trained (``fit``) and read back (``load``).

``gnn`` is :class:`surrogates.ensemble.GNNEnsemble` (MatGL graph networks), ``descriptor`` is
:class:`surrogates.descriptor_surrogate.DescriptorSurrogate` (boosted trees on descriptors and a pretrained
potential's features). Each registers itself with ``@SURROGATE_FAMILIES.register(name)``, a second registration
under a taken name is refused; :func:`surrogates.registry.surrogate_family` and
:func:`surrogates.registry.load_surrogate` look them up. This module imports nothing else of ours.
"""

from __future__ import annotations

from typing import Any

from core.registry import Registry

SURROGATE_FAMILIES: Registry[Any] = Registry("surrogate family")


def family_name(config: Any) -> str:
    """The family an ``EnsembleConfig`` trains: ``descriptor`` when it names one, else ``gnn``."""
    return "descriptor" if getattr(config, "descriptor", None) else "gnn"
