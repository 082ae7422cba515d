"""Reference phases for the convex hull: Materials Project formation energies of real competing phases.

The offline phase set is read from MP-20 and MPTS-52 format files (:mod:`oracle.phase_files`: MP-20 val, the
MP-20 test split without Li/Na compounds, MPTS-52 val) plus MP's elemental reference entries; with an MP API key
(``MP_API_KEY``, ``mp-api`` installed) each chemical system is completed with MP's own GGA/GGA+U phases
(:mod:`oracle.competing`, cached per chemical system). Energies are on MP's corrected GGA/GGA+U scale, the
scale CHGNet learned: a phase's total energy per atom is its MP formation energy plus the atom-fraction-weighted
MP elemental reference energies.

:class:`PhaseSet` answers, per chemical system (cached): the phases, a pymatgen ``PhaseDiagram``, the hull's
formation energy at a composition and the signed stability of a structure (:class:`Stability`), with how many
reference phases the system held, where they came from, and whether that hull is too thin to trust. Phases
computed by the oracle (:mod:`oracle.completion`: analogues of known phases, relaxed) can be added after
construction (:meth:`PhaseSet.add_phases`); the sub-systems completed so are recorded (:meth:`PhaseSet.completion`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from core.errors import ConfigError
from oracle.formation import formation_energy_per_atom
from oracle.phase_files import (
    ENV_PHASES_DIR,
    EXCLUDED_ELEMENTS,
    PHASE_FILES,
    ReferencePhase,
    find_phase_file,
    mp_elemental_energies,
    read_phase_file,
    source_label,
)

__all__ = [
    "ENV_PHASES_DIR",
    "EXCLUDED_ELEMENTS",
    "PHASE_FILES",
    "PhaseSet",
    "ReferencePhase",
    "Stability",
    "SubsystemCompletion",
    "default_phase_set",
    "find_phase_file",
    "mp_elemental_energies",
    "read_phase_file",
]

#: A hull resting on fewer reference compounds than this (by number of elements of the chemical system; 4 and
#: more share the last value) is flagged thin.
MIN_COMPOUNDS: dict[int, int] = {2: 1, 3: 3, 4: 5}


@dataclass(frozen=True, kw_only=True)
class SubsystemCompletion:
    """What completion found for one binary or ternary sub-system (oracle.completion)."""

    system: tuple[str, ...]
    """Sorted element symbols."""
    n_reference: int
    """Reference compounds (files, MP online) of exactly these elements before completion."""
    n_candidates: int = 0
    """Analogue structures built from known phases of analogous systems (0: none needed, or none found)."""
    n_added: int = 0
    """Computed phases added (relaxed successfully)."""
    n_failed: int = 0
    """Relaxations that failed (recorded, not retried)."""
    searched: bool = False
    """Whether analogues were searched for (False: it had enough reference compounds and was left as it was)."""


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
    """Compounds (not elements) in its chemical system and subsystems: reference phases and context phases."""
    sources: dict[str, int]
    """Where those compounds came from (source -> count): a phase file ('mp_20', 'mp_20_test', 'mpts_52'),
    'mp-api' (MP online), 'computed' (relaxed by the oracle) or 'campaign' (context phases)."""
    thin: bool
    """True when the hull may miss phases that matter, so a negative value more likely means missing phases than a
    discovery. After completion (every binary and ternary sub-system examined by oracle.completion): a sub-system
    still without any compound although analogous systems form compounds (every analogue relaxation failed).
    Before: fewer than MIN_COMPOUNDS compounds for its number of elements, or none with all but one of them."""
    gaps: tuple[str, ...] = ()
    """Binary and ternary sub-systems without any compound (e.g. 'Li-O'): after completion those that make it thin,
    before it every empty one."""


@dataclass
class PhaseSet:
    """Reference phases indexed by chemical system, with cached phase diagrams.

    Thread-safe: phases computed later (:meth:`add_phases`) join the index and drop the cached diagrams of the
    systems they belong to.

    Attributes:
        compounds: every reference compound (any number of elements >= 2).
        mu: element -> MP elemental reference energy (eV/atom).
        competing: an MP competing-phase source (``oracle.competing.CompetingPhases``) asked once per chemical
            system, or None offline.
        structure_files: source -> phase file whose ``cif`` column holds the structures of that source's phases
            (read lazily by :meth:`structure`).
    """

    compounds: Sequence[ReferencePhase]
    mu: Mapping[str, float]
    competing: Any = None
    structure_files: Mapping[str, Path] = field(default_factory=dict)
    _by_system: dict[frozenset[str], list[ReferencePhase]] = field(default_factory=dict, init=False, repr=False)
    _by_id: dict[str, ReferencePhase] = field(default_factory=dict, init=False, repr=False)
    _cache: dict[frozenset[str], tuple[list[ReferencePhase], PhaseDiagram]] = field(
        default_factory=dict, init=False, repr=False
    )
    _completed: dict[frozenset[str], SubsystemCompletion] = field(default_factory=dict, init=False, repr=False)
    _cifs: dict[str, dict[str, str]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _generation: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.compounds = list(self.compounds)
        for phase in self.compounds:
            self._by_system.setdefault(frozenset(phase.elements), []).append(phase)
            self._by_id[phase.entry_id] = phase

    def __len__(self) -> int:
        return len(self.compounds)

    def add_phases(self, phases: Iterable[ReferencePhase]) -> int:
        """Add phases (e.g. computed ones) after construction; ids already present are skipped. Cached diagrams of
        every system holding a new phase are dropped. Returns how many were added."""
        added = 0
        with self._lock:
            for phase in phases:
                if phase.entry_id in self._by_id:
                    continue
                system = frozenset(phase.elements)
                self._by_id[phase.entry_id] = phase
                self.compounds.append(phase)  # type: ignore[attr-defined]
                self._by_system.setdefault(system, []).append(phase)
                for key in [k for k in self._cache if system <= k]:
                    del self._cache[key]
                self._generation += 1
                added += 1
        return added

    def restricted(self, systems: Iterable[Iterable[str]], *, min_compounds: int = 1) -> PhaseSet:
        """A copy whose computed phases are those a campaign that labelled ``systems`` would have computed itself
        (hull completion: every sub-system of those systems with fewer than ``min_compounds`` other compounds, and
        the systems themselves), whichever campaign computed them first: the same labels give the same hull
        whatever else the cache holds. Completion records are kept."""
        wanted = {frozenset(s) for s in systems}
        with self._lock:
            counts = {k: sum(p.source != "computed" for p in ps) for k, ps in self._by_system.items()}

        def keep(p: ReferencePhase) -> bool:
            system = frozenset(p.elements)
            if p.source != "computed" or system in wanted:
                return True
            return counts.get(system, 0) < min_compounds and any(system <= w for w in wanted)

        with self._lock:
            compounds = [p for p in self.compounds if keep(p)]
            records = dict(self._completed)
        view = PhaseSet(compounds=compounds, mu=self.mu, competing=self.competing, structure_files=self.structure_files)
        view._completed.update(records)
        return view

    def mark_completed(self, record: SubsystemCompletion) -> None:
        """Record that completion examined this sub-system (see :class:`SubsystemCompletion`)."""
        system = frozenset(record.system)
        with self._lock:
            self._completed[system] = record

    def completion(self, elements: Iterable[str]) -> SubsystemCompletion | None:
        """What completion found for this exact sub-system, or None when it was not examined."""
        with self._lock:
            return self._completed.get(frozenset(elements))

    @property
    def completed(self) -> dict[str, SubsystemCompletion]:
        """Every examined sub-system ('Li-O' -> record), sorted."""
        with self._lock:
            records = list(self._completed.values())
        return {"-".join(r.system): r for r in sorted(records, key=lambda r: r.system)}

    def structure(self, entry_id: str) -> Any:
        """The pymatgen Structure of a phase-file phase (its CIF, read lazily per source), or None when unknown."""
        from pymatgen.core import Structure

        with self._lock:
            phase = self._by_id.get(entry_id)
            if phase is None or phase.source not in self.structure_files:
                return None
            if phase.source not in self._cifs:
                import pandas as pd

                df = pd.read_csv(self.structure_files[phase.source], usecols=["material_id", "cif"])
                self._cifs[phase.source] = dict(zip(df["material_id"].astype(str), df["cif"], strict=True))
            text = self._cifs[phase.source].get(entry_id)
        if not isinstance(text, str):
            return None
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen's CIF rounding notes
            return Structure.from_str(text, fmt="cif")

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
            generation = self._generation
            found = {p.entry_id: p for key, ps in self._by_system.items() if key <= system for p in ps}
        for p in self._online(system):
            found.setdefault(p.entry_id, p)
        compounds = sorted(found.values(), key=lambda p: (p.formula, p.entry_id))
        diagram = PhaseDiagram([*self._elements(system), *(_entry(p) for p in compounds)])
        with self._lock:
            if generation == self._generation:  # no phase was added meanwhile
                self._cache[system] = (compounds, diagram)
        return compounds, diagram

    def _elements(self, system: Iterable[str]) -> list[PDEntry]:
        return [PDEntry(Composition(el), self.mu[el], name=f"element:{el}") for el in sorted(system)]

    def phases(self, elements: Iterable[str]) -> list[ReferencePhase]:
        """Reference compounds whose elements are a subset of ``elements`` (elemental references not included)."""
        return list(self._system(elements)[0])

    def phases_of(self, elements: Iterable[str]) -> list[ReferencePhase]:
        """Reference compounds of exactly these elements (MP online ones included when allowed)."""
        system = self._check(elements)
        return [p for p in self._system(system)[0] if frozenset(p.elements) == system]

    def systems(self, n_elements: int) -> dict[frozenset[str], list[ReferencePhase]]:
        """Reference compounds (files and added ones, not MP online) by chemical system, for systems of
        ``n_elements`` elements."""
        with self._lock:
            return {k: list(v) for k, v in self._by_system.items() if len(k) == n_elements}

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

    def thin(
        self, elements: Iterable[str], *, context_systems: Iterable[frozenset[str]] = ()
    ) -> tuple[bool, tuple[str, ...]]:
        """Whether the hull of this chemical system is thin, and its empty binary/ternary sub-systems (see
        :attr:`Stability.thin` and :attr:`Stability.gaps`).

        Args:
            context_systems: element sets of further compounds in the hull (e.g. the campaign's).
        """
        system = self._check(elements)
        k = len(system)
        compounds, _ = self._system(system)
        if k < 2:
            return False, ()
        present = {frozenset(p.elements) for p in compounds} | {frozenset(s) for s in context_systems}
        subs = [frozenset(c) for n in (2, 3) if n <= k for c in combinations(sorted(system), n)]
        empty = [s for s in subs if s not in present]
        with self._lock:
            records = {s: self._completed.get(s) for s in subs}
        if all(r is not None for r in records.values()):
            gaps = [s for s in empty if records[s].n_candidates > 0]  # type: ignore[union-attr]
            return bool(gaps), tuple("-".join(sorted(s)) for s in gaps)
        n = len(compounds) + sum(1 for s in context_systems if s <= system)
        widest = max((len(s) for s in present if s <= system), default=1)
        thin = n < MIN_COMPOUNDS.get(k, MIN_COMPOUNDS[4]) or widest < k - 1
        return thin, tuple("-".join(sorted(s)) for s in empty)

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
                campaign's other evaluated structures; those outside this chemical system are ignored. They count
                as source 'campaign'.
        """
        comp = Composition(composition)
        system = self._check(el.symbol for el in comp.elements)
        compounds, base = self._system(system)
        inside = [(str(k), Composition(c), float(e)) for k, c, e in context]
        inside = [(k, c, e) for k, c, e in inside if {el.symbol for el in c.elements} <= system]
        extra = [PDEntry(c, e * c.num_atoms, name=k) for k, c, e in inside]
        diagram = PhaseDiagram([*base.all_entries, *extra]) if extra else base
        target = PDEntry(comp, float(energy_per_atom) * comp.num_atoms, name="candidate")
        hull = diagram.get_hull_energy_per_atom(comp)
        e_hull = float(energy_per_atom) - float(hull)
        decomposition = diagram.get_decomposition(comp) if e_hull > 0 else {target: 1.0}
        sources: dict[str, int] = {}
        for p in compounds:
            sources[p.source] = sources.get(p.source, 0) + 1
        campaign = [frozenset(el.symbol for el in c.elements) for _, c, _ in inside if len(c.elements) >= 2]
        if campaign:
            sources["campaign"] = len(campaign)
        thin, gaps = self.thin(system, context_systems=campaign)
        return Stability(
            e_above_hull=e_hull,
            decomposition={d.composition.reduced_formula: round(float(f), 6) for d, f in decomposition.items()},
            hull_formation_energy=float(hull) - self._mu_mean(comp),
            n_phases=len(compounds) + len(campaign),
            sources=sources,
            thin=thin,
            gaps=gaps,
        )


def _entry(phase: ReferencePhase) -> PDEntry:
    comp = Composition(phase.formula)
    return PDEntry(comp, phase.energy_per_atom * comp.num_atoms, name=phase.entry_id)


_DEFAULT: dict[tuple[Any, ...], PhaseSet] = {}
_DEFAULT_LOCK = threading.Lock()


def default_phase_set(
    sources: Sequence[str] = ("mp_20", "mp_20_test", "mpts_52"),
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
    labels = [source_label(s) for s in sources]
    compounds = [p for label, path in zip(labels, files, strict=True) for p in read_phase_file(path, label, mu)]
    online = CompetingPhases.from_env() if competing in (None, True) else None
    if competing and online is None:
        raise ConfigError("competing phases asked for but MP_API_KEY is not set")
    phase_set = PhaseSet(
        compounds=compounds, mu=mu, competing=online, structure_files=dict(zip(labels, files, strict=True))
    )
    with _DEFAULT_LOCK:
        _DEFAULT[key] = phase_set
    return phase_set
