"""Cheap sanity checks of a structure a user brings, before anything expensive touches it.

Pure functions returning a one-line reason ('' when the structure is fine), so callers record the reason and go
on with the other structures.
"""

from __future__ import annotations

import math
import re

from pymatgen.core import Element, Structure

_CIF_CELL = re.compile(r"^\s*_cell_(length_[abc]|angle_(?:alpha|beta|gamma))\s+(\S+)", re.M)

#: Plausible volume per atom of a crystal (Å³/atom): dense metals sit near 5-10, open frameworks below 60.
VOLUME_PER_ATOM = (1.0, 200.0)


def structure_problem(structure: Structure) -> str:
    """Why ``structure`` cannot be labelled as a crystal, or '' (lattice finite and positive, a plausible volume per
    atom, known elements, full occupancies, finite coordinates)."""
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
    return ""


def cif_cell_problem(text: str) -> str:
    """Why the cell a CIF declares is impossible, or '': a length that is not a positive number, an angle outside
    (0, 180)°. Checked on the text because pymatgen builds a positive cell from ``a = -5`` (the vector's length)."""
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
    return ""
