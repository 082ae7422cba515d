"""Reference phases for the convex hull: Materials Project formation energies of real competing phases.

The offline phase set is read from MP-20 and MPTS-52 format files (``mp_20_biternary/val.csv.gz``,
``mpts_52/val.csv.gz``: MP ``material_id``, ``formation_energy_per_atom`` (eV/atom), a CIF) plus MP's
elemental reference entries; with an MP API key (``MP_API_KEY``, ``mp-api`` installed) each chemical system
is completed with MP's own GGA/GGA+U phases (:mod:`oracle.competing`, cached per chemical system). Energies
are on MP's corrected GGA/GGA+U scale, the scale CHGNet learned: a phase's total energy per atom is its MP
formation energy plus the atom-fraction-weighted MP elemental reference energies.

:class:`PhaseSet` answers, per chemical system (cached): the phases, a pymatgen ``PhaseDiagram``, the hull's
formation energy at a composition and the signed stability of a structure (:class:`Stability`), with how many
reference phases the system held, where they came from, and whether that hull is too thin to trust.
"""

from __future__ import annotations

import gzip
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from core import paths
from core.errors import ConfigError
from oracle.formation import formation_energy_per_atom

__all__ = [
    "PHASE_FILES",
    "PhaseSet",
    "ReferencePhase",
    "Stability",
    "default_phase_set",
    "find_phase_file",
    "read_phase_file",
]

#: Source name -> (folder, file, public URL) of the MP-20 / MPTS-52 format files used offline.
PHASE_FILES: dict[str, tuple[str, str, str]] = {
    "mp_20": (
        "mp_20_biternary",
        "val.csv.gz",
        "https://raw.githubusercontent.com/SymmetryAdvantage/WyckoffTransformer/main/data/mp_20_biternary/val.csv.gz",
    ),
    "mpts_52": (
        "mpts_52",
        "val.csv.gz",
        "https://raw.githubusercontent.com/SymmetryAdvantage/WyckoffTransformer/main/data/mpts_52/val.csv.gz",
    ),
}
#: A folder laid out ``<folder>/<file>`` (such as ``../shared/data``) searched first for the phase files.
ENV_PHASES_DIR = "BATTERY_DISCOVERY_PHASES_DIR"
#: A hull resting on fewer reference compounds than this (by number of elements of the chemical system; 4 and
#: more share the last value) is flagged thin.
MIN_COMPOUNDS: dict[int, int] = {2: 1, 3: 3, 4: 5}

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
    source: str
    """'mp_20', 'mpts_52', 'mp-api' or 'mp-elements'."""


@dataclass(frozen=True, kw_only=True)
class Stability:
    """Stability of one structure against the hull of its chemical system."""

    e_above_hull: float
    """Signed distance to the hull (eV/atom): positive above it; negative when the structure lies below the
    hull the other phases make (by that much it would lower the hull)."""
    decomposition: dict[str, float]
    """Phases it decomposes into (reduced formula -> atom fraction); itself when it is on the hull."""
    hull_formation_energy: float
    """Formation energy of the hull at its composition, without it (eV/atom)."""
    n_phases: int
    """Reference compounds (not elements) in its chemical system and subsystems."""
    sources: dict[str, int]
    """Where those compounds came from (source -> count)."""
    thin: bool
    """True when the hull rests on few phases (fewer than MIN_COMPOUNDS compounds for its number of elements,
    or none with at least all but one of its elements): a negative value then more likely means missing
    phases than a discovery."""


def find_phase_file(source: str) -> Path:
    """The local copy of one phase file: ``$BATTERY_DISCOVERY_PHASES_DIR``, ``../shared/data`` beside the
    checkout, then the raw data cache ``<data home>/data/raw/<folder>/``, downloaded there when missing
    (never when offline: ``BATTERY_DISCOVERY_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``)."""
    from oracle.references import offline

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


def read_phase_file(path: Path | str, source: str, mu: Mapping[str, float]) -> list[ReferencePhase]:
    """Compounds of an MP-20/MPTS-52 format CSV (``material_id``, ``formation_energy_per_atom``, a formula
    column or a CIF with ``_chemical_formula_sum``); elemental rows and rows with an element ``mu`` lacks are
    left out.

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
        if len(symbols) < 2 or any(s not in mu for s in symbols) or e_form != e_form:
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
                source=source,
            )
        )
    return phases


@dataclass
class PhaseSet:
    """Reference phases indexed by chemical system, with cached phase diagrams.

    Attributes:
        compounds: every reference compound (any number of elements >= 2).
        mu: element -> MP elemental reference energy (eV/atom).
        competing: an MP competing-phase source (``oracle.competing.CompetingPhases``) asked once per chemical
            system, or None offline.
    """

    compounds: Sequence[ReferencePhase]
    mu: Mapping[str, float]
    competing: Any = None
    _by_system: dict[frozenset[str], list[ReferencePhase]] = field(default_factory=dict, init=False, repr=False)
    _cache: dict[frozenset[str], tuple[list[ReferencePhase], PhaseDiagram]] = field(
        default_factory=dict, init=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        for phase in self.compounds:
            self._by_system.setdefault(frozenset(phase.elements), []).append(phase)

    def __len__(self) -> int:
        return len(self.compounds)

    def _check(self, elements: Iterable[str]) -> frozenset[str]:
        system = frozenset(str(e) for e in elements)
        missing = sorted(e for e in system if e not in self.mu)
        if missing:
            raise ConfigError(f"no MP elemental reference for {', '.join(missing)}")
        return system

    def _online(self, system: frozenset[str]) -> list[ReferencePhase]:
        if self.competing is None:
            return []
        out = []
        for p in self.competing.phases(sorted(system)):
            comp = Composition(p.formula)
            symbols = tuple(sorted(el.symbol for el in comp.elements))
            if len(symbols) < 2 or any(s not in self.mu for s in symbols):
                continue
            e_form = formation_energy_per_atom(comp, p.energy_per_atom * comp.num_atoms, self.mu.__getitem__)
            entry_id = re.sub(r"-(GGA|GGA\+U|R2SCAN)$", "", str(p.entry_id))
            out.append(
                ReferencePhase(
                    entry_id=entry_id,
                    formula=comp.reduced_formula,
                    elements=symbols,
                    energy_per_atom=p.energy_per_atom,
                    formation_energy_per_atom=e_form,
                    source="mp-api",
                )
            )
        return out

    def _system(self, elements: Iterable[str]) -> tuple[list[ReferencePhase], PhaseDiagram]:
        system = self._check(elements)
        with self._lock:
            hit = self._cache.get(system)
        if hit is not None:
            return hit
        found = {p.entry_id: p for key, ps in self._by_system.items() if key <= system for p in ps}
        for p in self._online(system):
            found.setdefault(p.entry_id, p)
        compounds = sorted(found.values(), key=lambda p: (p.formula, p.entry_id))
        diagram = PhaseDiagram([*self._elements(system), *(_entry(p) for p in compounds)])
        with self._lock:
            self._cache[system] = (compounds, diagram)
        return compounds, diagram

    def _elements(self, system: Iterable[str]) -> list[PDEntry]:
        return [PDEntry(Composition(el), self.mu[el], name=f"element:{el}") for el in sorted(system)]

    def phases(self, elements: Iterable[str]) -> list[ReferencePhase]:
        """Reference compounds whose elements are a subset of ``elements`` (elemental references not included)."""
        return list(self._system(elements)[0])

    def entries(self, elements: Iterable[str]) -> list[PDEntry]:
        """The chemical system's phases as pymatgen ``PDEntry`` (total energies in eV), elements included."""
        compounds, _ = self._system(elements)
        return [*self._elements(self._check(elements)), *(_entry(p) for p in compounds)]

    def diagram(self, elements: Iterable[str]) -> PhaseDiagram:
        """The phase diagram of the reference phases of this chemical system (cached)."""
        return self._system(elements)[1]

    def hull_formation_energy(self, composition: Composition | str) -> float:
        """Formation energy of the reference hull at ``composition`` (eV/atom)."""
        comp = Composition(composition)
        diagram = self.diagram(el.symbol for el in comp.elements)
        hull = diagram.get_hull_energy_per_atom(comp)
        return float(hull - self._mu_mean(comp))

    def hull_formation_energies(
        self,
        compositions: Sequence[Composition | str],
        *,
        context: Sequence[tuple[str, Composition | str, float]] = (),
    ) -> list[float]:
        """Formation energy of the hull (eV/atom) at each composition, with ``context`` phases (key, composition,
        energy per atom in eV/atom on the MP scale) added to the reference phases; one diagram per chemical
        system."""
        comps = [Composition(c) for c in compositions]
        extra = [
            (frozenset(el.symbol for el in Composition(c).elements), Composition(c), float(e)) for _, c, e in context
        ]
        diagrams: dict[frozenset[str], PhaseDiagram] = {}
        out = []
        for comp in comps:
            system = self._check(el.symbol for el in comp.elements)
            if system not in diagrams:
                base = self.diagram(system)
                inside = [PDEntry(c, e * c.num_atoms) for s, c, e in extra if s <= system]
                diagrams[system] = PhaseDiagram([*base.all_entries, *inside]) if inside else base
            out.append(float(diagrams[system].get_hull_energy_per_atom(comp)) - self._mu_mean(comp))
        return out

    def _mu_mean(self, comp: Composition) -> float:
        fractions = comp.fractional_composition
        return sum(float(amount) * self.mu[el.symbol] for el, amount in fractions.items())

    def stability(
        self,
        composition: Composition | str,
        energy_per_atom: float,
        *,
        context: Sequence[tuple[str, Composition | str, float]] = (),
    ) -> Stability:
        """Signed energy above hull of a structure of ``composition`` with ``energy_per_atom`` (eV/atom, MP scale).

        Args:
            context: further phases on the same scale (key, composition, energy per atom in eV/atom), e.g. the
                campaign's other evaluated structures; those outside this chemical system are ignored.
        """
        comp = Composition(composition)
        system = self._check(el.symbol for el in comp.elements)
        compounds, base = self._system(system)
        extra = [
            PDEntry(Composition(c), float(e) * Composition(c).num_atoms, name=str(k))
            for k, c, e in context
            if {el.symbol for el in Composition(c).elements} <= system
        ]
        diagram = PhaseDiagram([*base.all_entries, *extra]) if extra else base
        target = PDEntry(comp, float(energy_per_atom) * comp.num_atoms, name="candidate")
        hull = diagram.get_hull_energy_per_atom(comp)
        e_hull = float(energy_per_atom) - float(hull)
        decomposition = diagram.get_decomposition(comp) if e_hull > 0 else {target: 1.0}
        sources: dict[str, int] = {}
        for p in compounds:
            sources[p.source] = sources.get(p.source, 0) + 1
        k = len(system)
        widest = max((len(p.elements) for p in compounds), default=1)
        thin = k >= 2 and (len(compounds) < MIN_COMPOUNDS.get(k, MIN_COMPOUNDS[4]) or widest < k - 1)
        return Stability(
            e_above_hull=e_hull,
            decomposition={d.composition.reduced_formula: round(float(f), 6) for d, f in decomposition.items()},
            hull_formation_energy=float(hull) - self._mu_mean(comp),
            n_phases=len(compounds),
            sources=sources,
            thin=thin,
        )


def _entry(phase: ReferencePhase) -> PDEntry:
    comp = Composition(phase.formula)
    return PDEntry(comp, phase.energy_per_atom * comp.num_atoms, name=phase.entry_id)


_DEFAULT: dict[tuple[Any, ...], PhaseSet] = {}
_DEFAULT_LOCK = threading.Lock()


def default_phase_set(
    sources: Sequence[str] = ("mp_20", "mpts_52"),
    *,
    mp_references: Path | str | None = None,
    competing: bool | None = None,
) -> PhaseSet:
    """The project's reference phases (read once per process): the phase files of ``sources``, the MP elemental
    references and, when ``competing`` (default: when ``MP_API_KEY`` is set), MP's phases per chemical system."""
    from oracle.competing import CompetingPhases
    from oracle.references import default_mp_references_path, load_mp_reference_entries

    ref_path = Path(mp_references) if mp_references else default_mp_references_path()
    files = [find_phase_file(s) for s in sources]
    key = (tuple(sources), str(ref_path), tuple(str(f) for f in files), competing)
    with _DEFAULT_LOCK:
        hit = _DEFAULT.get(key)
    if hit is not None:
        return hit
    mu = mp_elemental_energies(load_mp_reference_entries(ref_path))
    compounds = [p for source, path in zip(sources, files, strict=True) for p in read_phase_file(path, source, mu)]
    online = CompetingPhases.from_env() if competing in (None, True) else None
    if competing and online is None:
        raise ConfigError("competing phases asked for but MP_API_KEY is not set")
    phase_set = PhaseSet(compounds=compounds, mu=mu, competing=online)
    with _DEFAULT_LOCK:
        _DEFAULT[key] = phase_set
    return phase_set


def mp_elemental_energies(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Element -> corrected energy per atom (eV/atom) of MP's elemental reference entries."""
    out = {}
    for el, doc in entries.items():
        n_atoms = Composition(doc["composition"]).num_atoms
        out[str(el)] = (float(doc["energy"]) + float(doc.get("correction") or 0.0)) / n_atoms
    return out
