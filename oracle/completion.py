"""Hull completion: the competitors the reference files lack, built from known phases of analogous systems.

The offline reference phases (MP-20 / MPTS-52 files) miss many common competitors (no Li2O, LiF, NaF, Li3P):
an unstable Li/Na phase then lies below a hull that is too high. For every binary and ternary sub-system of a
chemical system (and the system itself when it has at most three elements) that holds fewer than
``min_compounds`` reference compounds, :func:`analogue_structures` builds competitor structures from the known
phases of analogous systems by ion exchange and data-mined substitution (Hautier et al., Inorg. Chem. 2011, 50,
656: pymatgen's ``SubstitutionProbability``, same oxidation state; elements of the same group where no oxidation
state can be assigned), e.g. Li2O from K2O or Na2O, rescaled to the ionic radii of the new species (the RLS rule
of pymatgen's ``RLSVolumePredictor``). :func:`complete` relaxes them with the oracle
(:func:`oracle.labelling.label_structures`) and adds them to the :class:`~oracle.phases.PhaseSet` as source
``computed``. Results are cached per data home and oracle key (``<data home>/cache/computed_phases/<key>/
<chemsys>.json``), also when nothing was found or a relaxation failed, so each sub-system is completed once. With
MP online (``MP_API_KEY``) MP's phases come first: a sub-system they fill is never completed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from pymatgen.core import Composition

from core import paths
from oracle.analogues import MAX_SITES, MAX_STRUCTURES, PER_FORMULA, Analogue, analogue_structures
from oracle.phases import PhaseSet, ReferencePhase, SubsystemCompletion

__all__ = [
    "Analogue",
    "CompletionReport",
    "analogue_structures",
    "cache_dir",
    "complete",
    "load_cached",
    "missing_subsystems",
    "reference_phase_set",
    "subsystems",
]

#: Completion settings that change what is computed: a cache file written under others is recomputed.
VERSION = 1
#: A sub-system with fewer reference compounds than this is completed.
MIN_COMPOUNDS = 1
#: The chemical system itself (two or three elements) is completed when it holds fewer compounds than this: one
#: Na-Se compound (NaSe2, say) leaves Na2Se 0.8 eV/atom below a hull that lacks its own composition, and analogues
#: of the system's likeliest compositions (Na2Se from Na2S or K2Se) restore it.
MIN_COMPOUNDS_SELF = 3

#: label(config, structures, *, num_threads, on_result) -> one dict per structure (label_structures' fields).
Labeler = Callable[..., list[dict[str, Any]]]


@dataclass(kw_only=True)
class CompletionReport:
    """What one :func:`complete` call did."""

    examined: list[str] = field(default_factory=list)
    """Sub-systems looked at ('Li-O')."""
    missing: list[str] = field(default_factory=list)
    """Those with fewer than min_compounds reference compounds (completed now or read from the cache)."""
    from_cache: list[str] = field(default_factory=list)
    n_relaxed: int = 0
    n_added: int = 0
    n_failed: int = 0
    seconds: float = 0.0


def subsystems(elements: Iterable[str]) -> list[tuple[str, ...]]:
    """Binaries and ternaries of ``elements`` (the system itself when it has two or three), sorted."""
    symbols = sorted(set(elements))
    return [c for n in (2, 3) if n <= len(symbols) for c in combinations(symbols, n)]


def missing_subsystems(
    phase_set: PhaseSet, elements: Iterable[str], *, min_compounds: int = MIN_COMPOUNDS
) -> list[tuple[str, ...]]:
    """Sub-systems of ``elements`` (:func:`subsystems`) with fewer than ``min_compounds`` compounds (computed
    ones and MP's online ones included) that completion has not examined yet."""
    return [
        s
        for s in subsystems(elements)
        if phase_set.completion(s) is None and len(phase_set.phases_of(s)) < min_compounds
    ]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "oracle"


#: The reference sources of the default oracle: their computed phases are cached under the bare oracle key.
DEFAULT_REFERENCES: tuple[str, ...] = ("mp_20", "mp_20_test", "mpts_52")


def cache_dir(config: Any) -> Path:
    """``<data home>/cache/computed_phases/<slug of the oracle key>[-refs-<hash>]``: computed phases of one oracle
    and set of reference sources (which phases are missing, and which known phases the analogues come from,
    depend on the references: a hull of other references never reuses them)."""
    refs = tuple(getattr(config, "reference_phases", DEFAULT_REFERENCES))
    return key_cache_dir(config.key(), references=refs)


def key_cache_dir(oracle_key: str, *, references: tuple[str, ...] = DEFAULT_REFERENCES) -> Path:
    """The cache folder of the oracle with this key and these reference sources (:func:`cache_dir`)."""
    name = _slug(oracle_key)
    if tuple(references) != DEFAULT_REFERENCES:
        digest = hashlib.sha256(json.dumps(list(references)).encode()).hexdigest()[:10]
        name += f"-refs-{digest}"
    return paths.subdir("cache") / "computed_phases" / name


def load_cached(
    phase_set: PhaseSet,
    oracle_key: str,
    *,
    systems: Iterable[Iterable[str]] | None = None,
    directory: Path | None = None,
    references: tuple[str, ...] = DEFAULT_REFERENCES,
    max_structures: int = MAX_STRUCTURES,
    per_formula: int = PER_FORMULA,
    max_sites: int = MAX_SITES,
) -> list[str]:
    """Add to ``phase_set`` the computed phases the cache holds for the oracle ``oracle_key`` (with the reference
    sources ``references``), relaxing nothing:
    those of every sub-system of ``systems`` (:func:`subsystems`), or every cached sub-system when None. Returns
    the sub-systems read ('Li-O'). Used when a phase set is built, so a new process (a resumed round, a worker,
    the dashboard) sees what earlier ones computed."""
    folder = Path(directory) if directory is not None else key_cache_dir(oracle_key, references=references)
    settings = _settings(max_structures, per_formula, max_sites)
    if systems is None:
        paths_ = sorted(folder.glob("*.json")) if folder.is_dir() else []
    else:
        names = sorted({"-".join(s) for system in systems for s in subsystems(system)})
        paths_ = [folder / f"{name}.json" for name in names]
    read = []
    for path in paths_:
        doc = _read(path, oracle_key, settings)
        if doc is None or phase_set.completion(doc["chemsys"].split("-")) is not None:
            continue
        phase_set.add_phases(_phases(phase_set, doc))
        phase_set.mark_completed(_record(doc))
        read.append(doc["chemsys"])
    return read


def _settings(max_structures: int, per_formula: int, max_sites: int) -> dict[str, Any]:
    return {"version": VERSION, "max_structures": max_structures, "per_formula": per_formula, "max_sites": max_sites}


def _read(path: Path, key: str, settings: dict[str, Any]) -> dict[str, Any] | None:
    """A cache document of this oracle and these settings, else None (absent, corrupt or another's: recomputed)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(doc, dict) and doc.get("settings") == settings and doc.get("oracle_key") == key
    return doc if ok else None


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".computed-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(doc, handle)
    os.replace(tmp, path)


def _phases(phase_set: PhaseSet, doc: dict[str, Any]) -> list[ReferencePhase]:
    """The computed phases of a cache document, formation energies against the phase set's references."""
    out = []
    for p in doc["phases"]:
        comp = Composition(p["formula"])
        fractions = comp.fractional_composition
        e_form = p["energy_per_atom"] - sum(float(x) * phase_set.mu[el.symbol] for el, x in fractions.items())
        out.append(
            ReferencePhase(
                entry_id=p["entry_id"],
                formula=comp.reduced_formula,
                elements=tuple(sorted(el.symbol for el in comp.elements)),
                energy_per_atom=float(p["energy_per_atom"]),
                formation_energy_per_atom=float(e_form),
                source="computed",
                provenance=doc["provenance"],
                parent=p["parent"],
            )
        )
    return out


def _record(doc: dict[str, Any]) -> SubsystemCompletion:
    return SubsystemCompletion(
        system=tuple(doc["chemsys"].split("-")),
        n_reference=int(doc["n_reference"]),
        n_candidates=len(doc["phases"]) + len(doc["failed"]),
        n_added=len(doc["phases"]),
        n_failed=len(doc["failed"]),
        searched=True,
    )


def _document(
    key: str,
    settings: dict[str, Any],
    sub: tuple[str, ...],
    n_reference: int,
    labelled: list[tuple[Analogue, dict[str, Any]]],
) -> dict[str, Any]:
    """The cache document of one sub-system: its computed phases (MP-scale energies) and failed relaxations."""
    doc: dict[str, Any] = {
        "chemsys": "-".join(sub),
        "oracle_key": key,
        "provenance": f"computed:{key}",
        "settings": settings,
        "units": "eV/atom",
        "n_reference": n_reference,
        "phases": [],
        "failed": [],
    }
    for analogue, fields in labelled:
        energy = fields.get("corrected_energy_per_atom")
        item = {"formula": analogue.formula, "parent": analogue.parent_id, "substitution": analogue.substitution}
        if fields.get("status") == "failed" or energy is None or not math.isfinite(float(energy)):
            doc["failed"].append({**item, "reason": str(fields.get("reason") or "failed")})
            continue
        doc["phases"].append(
            {
                **item,
                "entry_id": f"computed:{key}:{analogue.formula}:{analogue.parent_id}",
                "energy_per_atom": float(energy),
                "status": fields.get("status"),
                "structure": fields.get("relaxed_structure"),
            }
        )
    return doc


def _relax_analogues(
    todo: list[tuple[tuple[str, ...], int, list[Analogue]]],
    config: Any,
    phase_set: PhaseSet,
    report: CompletionReport,
    *,
    folder: Path,
    settings: dict[str, Any],
    label: Labeler | None,
    num_threads: int,
    say: Callable[[str], None],
) -> None:
    """Relax the analogues of every (sub-system, reference count, analogues) of ``todo`` in one oracle call; as
    soon as a sub-system's last relaxation is in, cache its document and add its phases (so a crash keeps what
    finished). A sub-system without analogues is recorded at once."""
    key = config.key()
    jobs = [(k, a) for k, (_, _, analogues) in enumerate(todo) for a in analogues]
    pending = {k: sum(owner == k for owner, _ in jobs) for k in range(len(todo))}
    results: dict[int, dict[str, Any]] = {}

    def finish(k: int) -> None:  # every relaxation of sub-system k is in: cache it, add its phases
        sub, n_reference, _ = todo[k]
        doc = _document(key, settings, sub, n_reference, [(a, results[i]) for i, (o, a) in enumerate(jobs) if o == k])
        _write(folder / f"{doc['chemsys']}.json", doc)
        phase_set.add_phases(_phases(phase_set, doc))
        phase_set.mark_completed(_record(doc))
        report.n_relaxed += len(doc["phases"]) + len(doc["failed"])
        report.n_added += len(doc["phases"])
        report.n_failed += len(doc["failed"])

    for k in [k for k, n in pending.items() if n == 0]:
        finish(k)  # nothing to derive it from: recorded as such
    if jobs:
        if label is None:
            from oracle.labelling import label_structures as label
        say(
            f"hull completion: {len(report.missing)} of {len(report.examined)} sub-systems lack reference phases; "
            f"relaxing {len(jobs)} analogue structures for {len(todo)} of them"
        )

        def on_result(i: int, fields: dict[str, Any]) -> None:
            results[i] = fields
            if len(results) % 10 == 0 or len(results) == len(jobs):
                say(f"hull completion: {len(results)}/{len(jobs)} relaxed")
            k = jobs[i][0]
            pending[k] -= 1
            if pending[k] == 0:
                finish(k)

        label(config, [a.structure for _, a in jobs], num_threads=num_threads, on_result=on_result)


def complete(
    phase_set: PhaseSet,
    systems: Iterable[Iterable[str]],
    config: Any,
    *,
    num_threads: int = 1,
    progress: Callable[[str], None] | None = None,
    directory: Path | None = None,
    min_compounds: int = MIN_COMPOUNDS,
    min_compounds_self: int = MIN_COMPOUNDS_SELF,
    max_structures: int = MAX_STRUCTURES,
    per_formula: int = PER_FORMULA,
    max_sites: int = MAX_SITES,
    relax: bool = True,
    label: Labeler | None = None,
) -> CompletionReport:
    """Complete the hull of every chemical system of ``systems``: each sub-system (:func:`missing_subsystems`)
    gets the analogue structures of :func:`analogue_structures`, relaxed by the oracle ``config``
    (:class:`~oracle.config.OracleConfig`) and added to ``phase_set`` as source ``computed`` (entry id
    ``computed:<oracle key>:<formula>:<parent MP id>``, provenance ``computed:<oracle key>``); every examined
    sub-system is recorded (:meth:`PhaseSet.mark_completed`). A sub-system is completed when it holds fewer than
    ``min_compounds`` reference compounds, a system of ``systems`` itself (two or three elements) when it holds
    fewer than ``min_compounds_self``.

    Args:
        directory: the cache folder (default :func:`cache_dir`): one JSON per completed sub-system, written also
            when nothing was found or every relaxation failed, so none is computed twice.
        relax: False: add what the cache holds and relax nothing (a read-only view, e.g. a dashboard).
        label: the oracle (default :func:`oracle.labelling.label_structures`).
        progress: called with a short message before and while relaxing.
    """
    say = progress or (lambda message: None)
    start = time.monotonic()
    report = CompletionReport()
    if max_structures <= 0:
        return report  # completion off: nothing examined, thin hulls stay flagged by the heuristic
    key = config.key()
    folder = Path(directory) if directory is not None else cache_dir(config)
    settings = _settings(max_structures, per_formula, max_sites)
    chemical_systems = {frozenset(s) for s in systems}
    wanted = sorted({s for system in chemical_systems for s in subsystems(system)})
    held: dict[frozenset[str], dict[str, str]] = {}  # sub-system -> MP entry id -> formula (one query per system)

    def needed(sub: tuple[str, ...]) -> int:  # complete below this many reference compounds
        return max(min_compounds, min_compounds_self) if frozenset(sub) in chemical_systems else min_compounds

    def done(sub: tuple[str, ...]) -> bool:  # examined already, under a rule at least as strict as this one
        record = phase_set.completion(sub)
        return record is not None and (record.searched or record.n_reference >= needed(sub))

    for system in chemical_systems:
        if not all(done(s) for s in subsystems(system)):
            for p in phase_set.phases(system):
                if p.source != "computed":
                    held.setdefault(frozenset(p.elements), {})[p.entry_id] = p.formula
    todo: list[tuple[tuple[str, ...], int, list[Analogue]]] = []
    for sub in wanted:
        name = "-".join(sub)
        if done(sub):
            continue
        report.examined.append(name)
        n_reference = len(held.get(frozenset(sub), {}))
        if n_reference >= needed(sub):
            phase_set.mark_completed(SubsystemCompletion(system=sub, n_reference=n_reference))
            continue
        report.missing.append(name)
        doc = _read(folder / f"{name}.json", key, settings)
        if doc is not None:
            phase_set.add_phases(_phases(phase_set, doc))
            phase_set.mark_completed(_record(doc))
            report.from_cache.append(name)
            continue
        if not relax:
            continue  # cached results only: the rest stays unexamined (thin where the files leave it empty)
        analogues = analogue_structures(
            phase_set,
            sub,
            max_structures=max_structures,
            per_formula=per_formula,
            max_sites=max_sites,
            held=held.get(frozenset(sub), {}).values(),
        )
        todo.append((sub, n_reference, analogues))
    _relax_analogues(todo, config, phase_set, report, folder=folder, settings=settings, label=label,
                     num_threads=num_threads, say=say)  # fmt: skip
    report.seconds = time.monotonic() - start
    return report


def reference_phase_set(config: Any) -> Any:
    """The Materials Project reference phases (:class:`oracle.phases.PhaseSet`) for this oracle's hull: the files
    of ``reference_phases`` plus, when ``competing_phases`` allows it, MP's own phases, and the phases hull
    completion computed for this oracle (its cache, :func:`load_cached`); one set per process
    and oracle key. None when the energies are not on the MP scale or no phase file is configured."""
    from oracle.compat import mp_compatible
    from oracle.phases import default_phase_set
    from oracle.potentials import get_potential

    if not config.reference_phases:
        return None
    if not mp_compatible(get_potential(config.final_potential).energy_scale, config.energy_correction):
        return None
    from oracle.phases import PhaseSet

    competing = None if config.competing_phases == "auto" else False
    base = default_phase_set(config.reference_phases, competing=competing)
    # one set per oracle: phases computed by one oracle (hull completion) never enter another's hull
    key = (id(base), config.key())
    with _PHASE_SETS_LOCK:
        hit = _PHASE_SETS.get(key)
        if hit is None:
            hit = _PHASE_SETS[key] = PhaseSet(
                compounds=base.compounds, mu=base.mu, competing=base.competing, structure_files=base.structure_files
            )
            settings = config.completion.kwargs()
            settings.pop("min_compounds_self")
            load_cached(hit, config.key(), references=tuple(config.reference_phases), **settings)  # earlier work
    return hit


_PHASE_SETS: dict[tuple[int, str], Any] = {}
_PHASE_SETS_LOCK = threading.Lock()
