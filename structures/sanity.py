"""Cheap sanity checks of a structure a user brings, before anything expensive touches it.

Pure functions returning a one-line reason ('' when the structure is fine), so callers record the reason and go
on with the other structures.
"""

from __future__ import annotations

import math
import re

import numpy as np
from pymatgen.core import Element, Structure

_TYPE_SYMBOL = re.compile(r"[A-Za-z]{1,2}\d*(?:[+-]\d*)?")  # Li, O2-, Fe3+, Li1+, LI: a symbol and a charge
_CIF_CELL = re.compile(r"^\s*_cell_(length_[abc]|angle_(?:alpha|beta|gamma))\s+(\S+)", re.M)

#: Plausible volume per atom of a crystal (Å³/atom): dense metals sit near 5-10, open frameworks below 60.
VOLUME_PER_ATOM = (1.0, 200.0)

#: Nearest two atoms of a crystal may be (Å), an atom and its own periodic image included (H2 is 0.74 Å).
MIN_DISTANCE = 0.5


def structure_problem(structure: Structure) -> str:
    """Why ``structure`` cannot be labelled as a crystal, or '' (lattice finite and positive, a plausible volume per
    atom, every cell height and every interatomic distance at least :data:`MIN_DISTANCE`, known elements, full
    occupancies, finite coordinates)."""
    if len(structure) == 0:
        return "no sites"
    lattice = structure.lattice
    values = [*lattice.abc, *lattice.angles]
    if not all(math.isfinite(v) for v in values):
        return "lattice has non-finite parameters"
    if min(lattice.abc) <= 0 or not math.isfinite(lattice.volume) or lattice.volume <= 0:
        return f"lattice is not a positive cell (a, b, c = {', '.join(f'{x:.3g}' for x in lattice.abc)} Å)"
    per_atom = lattice.volume / len(structure)
    low, high = VOLUME_PER_ATOM
    if not low <= per_atom <= high:
        return f"volume {per_atom:.3g} Å³/atom outside the plausible {low:g}-{high:g} Å³/atom"
    # before any neighbour search: a 1e9 x 1e-9 x 5 Å cell has a plausible volume but ~1e9 images within 0.5 Å
    a, b, c = lattice.matrix
    height = min(lattice.volume / float(np.linalg.norm(np.cross(u, v))) for u, v in ((b, c), (c, a), (a, b)))
    if height < MIN_DISTANCE:
        return f"cell {height:.3g} Å thin: each atom nearer than {MIN_DISTANCE:g} Å to its own periodic image"
    if not all(math.isfinite(x) for site in structure for x in site.frac_coords):
        return "non-finite site coordinates"
    if not structure.is_ordered:
        disordered = sorted({str(site.species) for site in structure if not site.is_ordered})
        return f"partial occupancy / disordered sites ({', '.join(disordered)}): order the structure first"
    for el in structure.composition.elements:
        if not isinstance(el, Element) and not Element.is_valid_symbol(getattr(el, "symbol", str(el))):
            return f"unknown species {el}"
        if getattr(el, "Z", 0) <= 0 or getattr(el, "Z", 0) > 94:
            return f"unsupported element {el}"
    centres, neighbours, images, distances = structure.get_neighbor_list(MIN_DISTANCE, exclude_self=False)
    for i, j, image, d in zip(centres, neighbours, images, distances, strict=True):
        if i < j or (i == j and image.any()):  # each pair once; an atom at distance 0 from itself is no problem
            return f"atoms {i} and {j} overlap ({d:.2g} Å apart, under {MIN_DISTANCE:g} Å)"
    return ""


def cif_cell_problem(text: str) -> str:
    """Why the cell a CIF declares is impossible, or '': a length that is not a positive number, an angle outside
    (0, 180)°, a site type that is no element symbol, a site occupancy that is not a positive number. Checked on
    the text because pymatgen builds a positive cell from ``a = -5`` (the vector's length), reads type ``Uuo`` as
    uranium and silently drops a site of occupancy -1 or NaN."""
    for name, raw in _CIF_CELL.findall(text):
        try:
            value = float(raw.split("(")[0])
        except ValueError:
            return f"_cell_{name} {raw!r} is not a number"
        if not math.isfinite(value):
            return f"_cell_{name} is {raw}"
        if name.startswith("length") and value <= 0:
            return f"_cell_{name} = {raw} Å: a cell length must be positive"
        if name.startswith("angle") and not 0 < value < 180:
            return f"_cell_{name} = {raw}°: a cell angle must lie between 0 and 180°"
    return _cif_site_problem(text) if "_atom_site_" in text else ""


def _cif_site_problem(text: str) -> str:
    """Why an ``_atom_site_type_symbol`` of the CIF is no element symbol (pymatgen reads ``Uuo`` as U, ``LiF`` as Li)
    or an ``_atom_site_occupancy`` is impossible (not a number, NaN, <= 0), or ''."""
    from pymatgen.io.cif import CifFile

    try:
        blocks = list(CifFile.from_str(text).data.values())
    except Exception:  # a CIF that does not parse: the structure parser says why
        return ""
    for block in blocks:
        for raw in _values(block.data.get("_atom_site_type_symbol")):
            # two letters that name no element (Xx) become a dummy species: structure_problem names it
            if raw not in ("?", ".") and not _TYPE_SYMBOL.fullmatch(raw):
                return f"_atom_site_type_symbol {raw!r} is not an element symbol (e.g. Li, O2-, Fe3+)"
        for raw in _values(block.data.get("_atom_site_occupancy")):
            if raw in ("?", "."):  # unknown / not applicable: read as fully occupied
                continue
            try:
                value = float(raw.split("(")[0])
            except ValueError:
                return f"_atom_site_occupancy {raw!r} is not a number"
            if not math.isfinite(value) or value <= 0:
                return f"_atom_site_occupancy = {raw}: an occupancy must be a positive number"
    return ""


def _values(value: object) -> list[str]:
    """A CIF item's values: a loop's list, a single value, or none."""
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
