"""Seed structures: pymatgen's bundled examples or the user's files, checked before use."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import DummySpecies, Element, Structure

from core.errors import SeedError
from oracle.relax import right_handed
from structures.sanity import cif_cell_problem, structure_problem

# Li/Na structures that ship with pymatgen (Materials Project relaxed), usable offline.
DEFAULT_SEEDS: tuple[str, ...] = ("Li2O", "Li2O2", "LiFePO4", "NaFePO4", "Li3V2(PO4)3")
_SUFFIXES = {".cif", ".json", ".vasp", ".poscar", ".cssr", ".xsf", ".mcif"}
_MAX_Z = 94  # universal potentials are trained up to Pu


@dataclass(frozen=True, kw_only=True)
class Seed:
    """A parent structure with a name saying where it came from."""

    name: str
    structure: Structure


def bundled_structures_dir() -> Path:
    """Folder of the example structures bundled with pymatgen."""
    import pymatgen.core

    return Path(pymatgen.core.__file__).resolve().parents[1] / "util" / "structures"


def check_structure(structure: Structure, name: str) -> Structure:
    """Return an ordered copy without site properties, or raise SeedError saying what is wrong."""
    if len(structure) == 0:
        raise SeedError(f"{name}: the structure has no sites")
    if not structure.is_ordered:
        raise SeedError(
            f"{name}: partial occupancies ({structure.composition.formula}); order the structure first "
            "(e.g. pymatgen OrderDisorderedStructureTransformation)"
        )
    for species in structure.composition:
        if isinstance(species, DummySpecies) or not Element.is_valid_symbol(getattr(species, "symbol", "")):
            raise SeedError(f"{name}: unknown element {species!s}")
        if Element(species.symbol).Z > _MAX_Z:
            raise SeedError(f"{name}: element {species.symbol} is beyond what the potentials cover (Z <= {_MAX_Z})")
    clean = right_handed(
        Structure(structure.lattice, [site.specie.symbol for site in structure], structure.frac_coords)
    )
    if clean.volume <= 0 or not clean.is_valid(tol=0.3):
        raise SeedError(f"{name}: atoms closer than 0.3 Å or a degenerate cell")
    if problem := structure_problem(clean):  # an impossible cell, e.g. 1e9 x 1e-9 x 5 Å, never reaches a relaxation
        raise SeedError(f"{name}: {problem}")
    return clean


def _read_file(path: Path) -> Structure:
    if path.suffix.lower() == ".cif":
        try:
            problem = cif_cell_problem(path.read_text(errors="replace"))
        except OSError as exc:
            raise SeedError(f"{path}: cannot read it ({exc})") from None
        if problem:
            raise SeedError(f"{path}: {problem}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_file(path)
    except Exception as exc:  # pymatgen raises many types for broken files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SeedError(f"{path}: cannot read a structure ({reason[:200]})") from exc


def load_seeds(specs: tuple[str, ...] | list[str]) -> list[Seed]:
    """Resolve seed specs into checked structures.

    A spec is ``pymatgen:default`` (all of :data:`DEFAULT_SEEDS`), ``pymatgen:<name>`` (one bundled
    example, e.g. ``pymatgen:Li2O``), a structure file (CIF, POSCAR, pymatgen JSON, ...) or a folder of them.
    """
    seeds: list[Seed] = []
    for spec in specs:
        if spec.startswith("pymatgen:"):
            name = spec.removeprefix("pymatgen:")
            names = DEFAULT_SEEDS if name == "default" else (name,)
            for n in names:
                path = bundled_structures_dir() / f"{n}.json"
                if not path.is_file():
                    available = sorted(p.stem for p in bundled_structures_dir().glob("*.json"))
                    raise SeedError(f"no bundled pymatgen structure {n!r}; available: {', '.join(available)}")
                seeds.append(Seed(name=f"pymatgen:{n}", structure=check_structure(_read_file(path), spec)))
            continue
        path = Path(spec).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES or "POSCAR" in p.name)
            if not files:
                raise SeedError(f"{path}: no structure files (CIF, POSCAR, JSON) in this folder")
        elif path.is_file():
            files = [path]
        else:
            raise SeedError(f"seed {spec!r} is neither a file, a folder nor 'pymatgen:<name>'")
        for file in files:
            seeds.append(Seed(name=str(file), structure=check_structure(_read_file(file), str(file))))
    if not seeds:
        raise SeedError("no seed structures given")
    return seeds
