"""The Materials Project phase files of the offline hull: where they are found and how a row becomes a phase.

MP-20 and MPTS-52 format CSVs (``material_id``, ``formation_energy_per_atom`` in eV/atom, a formula or CIF, MP's
energy above hull where given), found in ``$BATTERY_DISCOVERY_PHASES_DIR``, ``../shared/data`` or the raw data
cache (downloaded there from their public URL when missing and allowed). Energies go onto MP's corrected GGA/GGA+U
scale with MP's elemental reference energies (:func:`mp_elemental_energies`).
"""

from __future__ import annotations

import gzip
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymatgen.core import Composition

from core import paths
from core.errors import ConfigError

__all__ = [
    "ENV_PHASES_DIR",
    "EXCLUDED_ELEMENTS",
    "PHASE_FILES",
    "ReferencePhase",
    "find_phase_file",
    "mp_elemental_energies",
    "read_phase_file",
]

#: Source name -> (folder, file, public URL) of the MP-20 / MPTS-52 format files used offline.
PHASE_FILES: dict[str, tuple[str, str, str]] = {
    "mp_20": (
        "mp_20_biternary",
        "val.csv.gz",
        "https://raw.githubusercontent.com/SymmetryAdvantage/WyckoffTransformer/main/data/mp_20_biternary/val.csv.gz",
    ),
    "mp_20_test": (
        "mp_20_biternary",
        "test_without_li_na.csv.gz",
        # the original holds Li/Na compounds too: read_phase_file drops them (EXCLUDED_ELEMENTS)
        "https://raw.githubusercontent.com/SymmetryAdvantage/WyckoffTransformer/main/data/mp_20_biternary/test.csv.gz",
    ),
    "mpts_52": (
        "mpts_52",
        "val.csv.gz",
        "https://raw.githubusercontent.com/SymmetryAdvantage/WyckoffTransformer/main/data/mpts_52/val.csv.gz",
    ),
}
#: Compounds of these elements are left out of a source on reading: the MP-20 test split's Li/Na compounds stay
#: out of the hull for independent checks (the downloaded original holds them; the shared copy does not).
EXCLUDED_ELEMENTS: dict[str, frozenset[str]] = {"mp_20_test": frozenset({"Li", "Na"})}
#: A folder laid out ``<folder>/<file>`` (such as ``../shared/data``) searched first for the phase files.
ENV_PHASES_DIR = "BATTERY_DISCOVERY_PHASES_DIR"
_FORMULA_SUM = re.compile(r"_chemical_formula_sum\s+'?([^'\n]+)'?")


@dataclass(frozen=True, kw_only=True)
class ReferencePhase:
    """One competing phase on the MP-compatible scale."""

    entry_id: str
    """MP id (``mp-1234``), or ``element:<symbol>`` for an elemental reference."""
    formula: str
    """Reduced formula."""
    elements: tuple[str, ...]
    """Sorted element symbols."""
    energy_per_atom: float
    """MP corrected GGA/GGA+U total energy (eV/atom)."""
    formation_energy_per_atom: float
    """Formation energy against the MP elemental references (eV/atom)."""
    e_above_hull: float | None = None
    """MP's energy above its own hull (eV/atom) where the file gives it."""
    source: str
    """'mp_20', 'mp_20_test', 'mpts_52', 'file:<file name>' (oracle.config reference_phases 'file:PATH'), 'mp-api',
    or 'computed' (relaxed by the oracle, oracle.completion)."""
    provenance: str = ""
    """For a computed phase: ``computed:<oracle key>`` (empty for MP phases)."""
    parent: str = ""
    """For a computed phase: the MP id of the known phase it was derived from (ion exchange / substitution)."""


def find_phase_file(source: str) -> Path:
    """The local copy of one phase file (``file:PATH``: that file): ``$BATTERY_DISCOVERY_PHASES_DIR``,
    ``../shared/data`` beside the checkout, then the raw data cache ``<data home>/data/raw/<folder>/``, downloaded
    there when missing (never when offline: ``BATTERY_DISCOVERY_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``)."""
    from oracle.references import offline

    if source.startswith("file:"):
        path = Path(source.removeprefix("file:")).expanduser()
        if not path.is_file():
            raise ConfigError(f"reference phases {source}: no such file")
        return path
    if source not in PHASE_FILES:
        raise ConfigError(f"unknown phase source {source!r}; known: {', '.join(PHASE_FILES)}")
    folder, name, url = PHASE_FILES[source]
    roots = [Path(os.environ[ENV_PHASES_DIR])] if os.environ.get(ENV_PHASES_DIR) else []
    root = paths.project_root()
    if root is not None:
        roots.append(root.parent / "shared" / "data")
    cache = paths.data_home() / "data" / "raw"
    roots.append(cache)
    for base in roots:
        if (base / folder / name).is_file():
            return base / folder / name
    dest = cache / folder / name
    hint = f"copy {folder}/{name} to {dest} or set {ENV_PHASES_DIR} to a folder holding {folder}/{name}"
    if offline():
        raise ConfigError(f"reference phases {source} not found and downloads are off; {hint}")
    import urllib.request

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".download-")
    try:
        with urllib.request.urlopen(url, timeout=120) as response, os.fdopen(fd, "wb") as handle:
            handle.write(response.read())
        with gzip.open(tmp, "rt") as check:
            check.readline()
        os.replace(tmp, dest)
    except Exception as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot download reference phases from {url}: {exc}; {hint}") from exc
    return dest


def source_label(source: str) -> str:
    """How phases of a reference source are labelled: its name, or ``file:<file name>`` for ``file:PATH``."""
    return f"file:{Path(source.removeprefix('file:')).name}" if source.startswith("file:") else source


def read_phase_file(path: Path | str, source: str, mu: Mapping[str, float]) -> list[ReferencePhase]:
    """Compounds of an MP-20/MPTS-52 format CSV (``material_id``, ``formation_energy_per_atom``, a formula
    column or a CIF with ``_chemical_formula_sum``); elemental rows, rows with an element ``mu`` lacks and, for
    the sources of :data:`EXCLUDED_ELEMENTS`, compounds of those elements are left out.

    Args:
        mu: element -> MP elemental reference energy (eV/atom).
    """
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise ConfigError(f"cannot read reference phases {path}: {exc}") from None
    missing = {"material_id", "formation_energy_per_atom"} - set(df.columns)
    if missing:
        raise ConfigError(f"{path}: no column {', '.join(sorted(missing))}")
    formulas = df["pretty_formula"] if "pretty_formula" in df.columns else None
    hull_column = next((c for c in ("e_above_hull", "energy_above_hull") if c in df.columns), None)
    hulls = df[hull_column] if hull_column else None
    excluded = EXCLUDED_ELEMENTS.get(source, frozenset())
    phases = []
    for i, (mid, e_form) in enumerate(zip(df["material_id"], df["formation_energy_per_atom"], strict=True)):
        try:
            if formulas is not None:
                comp = Composition(str(formulas.iloc[i]))
            else:
                match = _FORMULA_SUM.search(str(df["cif"].iloc[i]))
                if match is None:
                    continue
                comp = Composition(match.group(1))
            e_form = float(e_form)
        except (ValueError, TypeError, KeyError):
            continue
        symbols = tuple(sorted(el.symbol for el in comp.elements))
        if len(symbols) < 2 or any(s not in mu for s in symbols) or e_form != e_form or excluded & set(symbols):
            continue  # elemental polymorphs: the MP elemental references are the lowest ones
        fractions = comp.fractional_composition
        energy = e_form + sum(float(fractions[s]) * mu[s] for s in symbols)
        phases.append(
            ReferencePhase(
                entry_id=str(mid),
                formula=comp.reduced_formula,
                elements=symbols,
                energy_per_atom=energy,
                formation_energy_per_atom=e_form,
                e_above_hull=None if hulls is None or hulls.iloc[i] != hulls.iloc[i] else float(hulls.iloc[i]),
                source=source,
            )
        )
    return phases


def mp_elemental_energies(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Element -> corrected energy per atom (eV/atom) of MP's elemental reference entries."""
    out = {}
    for el, doc in entries.items():
        n_atoms = Composition(doc["composition"]).num_atoms
        out[str(el)] = (float(doc["energy"]) + float(doc.get("correction") or 0.0)) / n_atoms
    return out
