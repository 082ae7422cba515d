"""The 3D structure viewer: crystal-toolkit's ``StructureMoleculeComponent`` (the Materials Project's own), adapted
to this stack at import.

Two adaptations, both measured with crystal-toolkit 2026.7.20, pymatgen 2026 and flask-caching 2.5:

- pymatgen renamed ``StructureGraph.with_empty_graph``, ``with_local_env_strategy`` and ``with_edges`` (and the
  ``MoleculeGraph`` ones) to ``from_*``; crystal-toolkit still calls the old names (upstream issue
  materialsproject/crystaltoolkit#473). The old names are added back as aliases when missing.
- flask-caching 2.5 has no cache type ``"simple"``; the plugin gets a ``SimpleCache`` of our own.

Its JavaScript comes from the ``dash-mp-components`` wheel (offline); its CSS (Bulma, Font Awesome) is served from
``dashboard/assets/vendor`` (see :mod:`dashboard.vendor`), never from a CDN.
"""

from __future__ import annotations

from typing import Any

_RENAMED = ("with_empty_graph", "with_local_env_strategy", "with_edges")


def patch_pymatgen_graph_names() -> list[str]:
    """Alias the old ``with_*`` constructors of pymatgen's structure and molecule graphs; returns those added."""
    from pymatgen.analysis.graphs import MoleculeGraph, StructureGraph

    added = []
    for cls in (StructureGraph, MoleculeGraph):
        for old in _RENAMED:
            new = "from_" + old[len("with_") :]
            if not hasattr(cls, old) and hasattr(cls, new):
                setattr(cls, old, getattr(cls, new))
                added.append(f"{cls.__name__}.{old}")
    return added


def crystal_toolkit_plugin(layout: Any) -> Any:
    """The crystal-toolkit Dash plugin for ``layout`` with an in-memory cache and no CDN stylesheets."""
    from flask_caching import Cache

    patch_pymatgen_graph_names()
    from crystal_toolkit.core.plugin import CrystalToolkitPlugin

    return CrystalToolkitPlugin(layout=layout, cache=Cache(config={"CACHE_TYPE": "SimpleCache"}), use_default_css=False)


def structure_component(component_id: str = "structure") -> Any:
    """The one structure viewer of the app (its data is set per candidate by a callback)."""
    patch_pymatgen_graph_names()
    import crystal_toolkit.components as ctc

    return ctc.StructureMoleculeComponent(
        id=component_id, show_export_button=False, show_image_button=False, show_position_button=False
    )
