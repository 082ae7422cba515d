"""Known or novel: is a candidate a known material or a new one?

A structure is *known* when it matches (:func:`structures.identity.same_structure`: the same reduced formula first,
then pymatgen's StructureMatcher with its default tolerances, oxidation states ignored) one of:

- a reference phase of the hull (:class:`oracle.phases.PhaseSet`): an MP phase of the phase files (its structure
  read lazily from the file's ``cif`` column) or, with ``MP_API_KEY``, one of MP's own phases online (structures
  fetched once per id and cached under ``<data home>/cache/mp_structures/``). Phases the hull completion computed
  (source ``computed``) are analogues relaxed by the oracle, not known materials: they are skipped;
- a seed or a labelled data-set entry of the campaign (candidates of source ``seed`` or ``dataset``, known
  themselves: :meth:`store.documents.Novelty.known_by_source`).

Otherwise it is *novel*. A checker parses the reference structures of a formula once; a formula without any costs a
dict lookup. Offline the phase files hold far from every known material (no Li2O, Li2Se or antifluorite Na2O), so a
verdict records what it was checked against (``Novelty.checked_against``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pymatgen.core import Structure

from core.errors import ConfigError
from store.documents import KNOWN_SOURCES, EvaluationDoc, Novelty
from store.repository import _guard
from structures.identity import coarse_fingerprint, deduplicate, same_structure

log = logging.getLogger(__name__)

#: fetch(MP material ids) -> id -> structure (those MP has); asked only for ids not cached yet.
StructureFetcher = Callable[[list[str]], dict[str, Structure]]


def _plain(structure: Structure) -> Structure:
    """A copy without oxidation states (generators may decorate species; the reference files do not)."""
    copy = structure.copy()
    copy.remove_oxidation_states()
    return copy


def mp_structure_fetcher(api_key: str) -> StructureFetcher:
    """Structures of MP material ids through ``mp-api`` (one search per call)."""

    def fetch(ids: list[str]) -> dict[str, Structure]:
        from mp_api.client import MPRester

        with MPRester(api_key, mute_progress_bars=True) as rester:
            docs = rester.materials.summary.search(material_ids=ids, fields=["material_id", "structure"])
        return {str(d.material_id): d.structure for d in docs if d.structure is not None}

    return fetch


class MPStructures:
    """Structures of MP online phases by id, cached as ``<cache>/mp_structures/<id>.json`` (also 'none found')."""

    def __init__(self, fetch: StructureFetcher | None, cache_dir: Path | None = None) -> None:
        from core import paths

        self.fetch = fetch
        self.cache_dir = Path(cache_dir) if cache_dir is not None else paths.subdir("cache") / "mp_structures"
        self.n_fetched = 0  #: ids asked of MP (cache misses) by this instance

    @classmethod
    def from_env(cls, cache_dir: Path | None = None) -> MPStructures:
        """From ``$MP_API_KEY``; without a key only the cache is read."""
        key = os.environ.get("MP_API_KEY", "").strip()
        return cls(mp_structure_fetcher(key) if key else None, cache_dir)

    def _file(self, entry_id: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", entry_id):
            raise ValueError(f"not an MP id: {entry_id!r}")
        return self.cache_dir / f"{entry_id}.json"

    def get(self, ids: Sequence[str]) -> dict[str, Structure]:
        """Structures of ``ids`` (those MP has), fetched once per id."""
        out: dict[str, Structure] = {}
        missing = []
        for entry_id in ids:
            path = self._file(entry_id)
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                missing.append(entry_id)
                continue
            if data.get("structure"):
                out[entry_id] = Structure.from_dict(data["structure"])
        if missing and self.fetch is not None:
            try:
                found = self.fetch(missing)
            except Exception as exc:  # offline, a quota: the check goes on without MP's structures
                log.warning("MP structures of %s not fetched: %s", ", ".join(missing), exc)
                return out
            self.n_fetched += len(missing)
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            for entry_id in missing:
                structure = found.get(entry_id)
                fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".structure-", suffix=".json")
                with os.fdopen(fd, "w") as handle:
                    json.dump({"id": entry_id, "structure": structure.as_dict() if structure else None}, handle)
                os.replace(tmp, self._file(entry_id))
                if structure is not None:
                    out[entry_id] = structure
        return out


def _file_structure(phase_set: Any, entry_id: str) -> Structure | None:
    """A phase file's structure of ``entry_id``, or None (a file without a ``cif`` column, an unreadable CIF)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return phase_set.structure(entry_id)
    except (ValueError, KeyError, OSError) as exc:
        log.debug("no structure for %s: %s", entry_id, exc)
        return None


@dataclass(frozen=True)
class _Known:
    match: str
    source: str
    structure: Structure


@dataclass
class NoveltyChecker:
    """Tells a structure known or novel (see the module docstring); reference structures are cached by formula.

    Attributes:
        phase_set: the reference phases of the hull (``oracle.phases.PhaseSet``), or None (then only the campaign's
            seeds and data-set entries count).
        store: the candidate store, for the campaign's seeds and data-set entries (None: not checked).
        campaign: the campaign whose seeds count.
        mp_structures: structures of MP online phases (None: from the environment when the phase set holds any).
    """

    phase_set: Any = None
    store: Any = None
    campaign: str = ""
    mp_structures: MPStructures | None = None
    _by_formula: dict[str, list[_Known]] = field(default_factory=dict, init=False, repr=False)
    _online: bool = field(default=False, init=False, repr=False)
    _offline: bool = field(default=False, init=False, repr=False)

    @property
    def checked_against(self) -> str:
        """What a verdict was checked against: 'seeds' and the phase sources ('mp-api' when MP's online phases are
        asked, unless MP could not be reached)."""
        parts = ["seeds"] if self.store is not None else []
        if self.phase_set is not None:
            parts += list(getattr(self.phase_set, "structure_files", {}) or {})
            online = self._online or getattr(self.phase_set, "competing", None) is not None
            if online and not self._offline:
                parts.append("mp-api")
        return ", ".join(parts)

    def _references(self, structure: Structure) -> list[_Known]:
        formula = structure.composition.reduced_formula
        hit = self._by_formula.get(formula)
        if hit is None:
            hit = self._by_formula[formula] = [*self._campaign(structure), *self._phases(structure, formula)]
        return hit

    def _campaign(self, structure: Structure) -> list[_Known]:
        if self.store is None:
            return []
        docs = self.store.find_by_fingerprints(self.campaign, [coarse_fingerprint(structure)])
        known = []
        for d in sorted(docs, key=lambda d: d.id):
            if d.source not in KNOWN_SOURCES:
                continue
            verdict = Novelty.known_by_source(d.source, d.parent)
            name = verdict.match if verdict is not None and verdict.match else d.id
            known.append(_Known(match=name, source=d.source, structure=_plain(Structure.from_dict(d.structure))))
        return known

    def _phases(self, structure: Structure, formula: str) -> list[_Known]:
        if self.phase_set is None:
            return []
        elements = sorted(el.symbol for el in structure.composition.elements)
        try:
            phases = [p for p in self.phase_set.phases_of(elements) if p.formula == formula]
        except ConfigError:  # an element without an MP reference: no reference phases either
            return []
        except Exception as exc:  # MP online unreachable: the files' phases only (the verdict says so)
            log.warning("novelty of %s checked without MP's online phases: %s", formula, exc)
            self._offline = True
            own = self.phase_set.systems(len(elements)).get(frozenset(elements), [])
            phases = [p for p in own if p.formula == formula]
        known = []
        online = [p.entry_id for p in phases if p.source == "mp-api"]
        fetched: dict[str, Structure] = {}
        if online:
            self._online = True
            if self.mp_structures is None:
                self.mp_structures = MPStructures.from_env()
            fetched = self.mp_structures.get(online)
        for p in phases:
            if p.source == "computed":  # an analogue the oracle relaxed for the hull, not a known material
                continue
            ref = fetched.get(p.entry_id) if p.source == "mp-api" else _file_structure(self.phase_set, p.entry_id)
            if ref is not None:
                known.append(_Known(match=p.entry_id, source=p.source, structure=_plain(ref)))
        return known

    def check(self, structure: Structure, *, on: Literal["generated", "relaxed"] = "generated") -> Novelty:
        """The verdict on ``structure`` (as generated or relaxed): the first known structure it matches, if any."""
        plain = _plain(structure)
        for known in self._references(plain):
            if same_structure(plain, known.structure):
                return Novelty(
                    status="known",
                    match=known.match,
                    match_source=known.source,
                    checked_against=self.checked_against,
                    checked_on=on,
                )
        return Novelty(status="novel", checked_against=self.checked_against, checked_on=on)


def reference_phases(sources: Iterable[str], competing_phases: str = "auto") -> Any:
    """The reference phases of the hull to check novelty against (:func:`oracle.phases.default_phase_set` of
    ``sources``, MP online with ``competing_phases='auto'`` and a key), read once per process; None without sources
    or when the phase files cannot be found (the check then covers the campaign's seeds only)."""
    sources = tuple(sources)
    if not sources:
        return None
    from oracle.phases import default_phase_set

    try:
        return default_phase_set(sources, competing=None if competing_phases == "auto" else False)
    except ConfigError as exc:
        log.warning("novelty checked against the seeds only: %s", exc)
        return None


def needs_relaxed_check(novelty: Novelty | None) -> bool:
    """Whether a label's verdict should be made (again) on its relaxed structure: not yet checked there, and not
    known by construction (a seed or data-set entry stays known whatever it relaxes to)."""
    if novelty is None:
        return True
    return novelty.checked_on != "relaxed" and novelty.match_source not in KNOWN_SOURCES


def check_labels(store: Any, checker: NoveltyChecker, labels: Sequence[EvaluationDoc]) -> list[EvaluationDoc]:
    """Make the verdict on the relaxed structure of every label that needs one (:func:`needs_relaxed_check`), record
    it on the evaluation and its candidate, and return ``labels`` with their verdicts. A label without a verdict
    whose candidate is a seed or data-set entry (a store written before the check) is known by its source."""
    pending = [e for e in labels if e.relaxed_structure and needs_relaxed_check(e.novelty)]
    if not pending:
        return list(labels)
    sources = {c.id: c for c in store.get_candidates([e.candidate_id for e in pending if e.novelty is None])}
    verdicts: dict[str, Novelty] = {}
    for e in pending:
        cand = sources.get(e.candidate_id)
        verdict = Novelty.known_by_source(cand.source, cand.parent) if cand is not None else None
        if verdict is None:
            verdict = checker.check(Structure.from_dict(e.relaxed_structure), on="relaxed")  # type: ignore[arg-type]
        store.set_novelty(e.candidate_id, verdict, e.id)
        verdicts[e.id] = verdict
    return [e.model_copy(update={"novelty": verdicts[e.id]}) if e.id in verdicts else e for e in labels]


#: Energy above hull (eV/atom) within which a label counts as stable for the S.U.N. rate (as in
#: benchmarks/generators.py).
STABLE_EV = 0.1


def is_known(e: EvaluationDoc) -> bool:
    """Whether a label is a known material (unchecked ones count as novel, shown as unchecked)."""
    return e.novelty is not None and e.novelty.status == "known"


@_guard
def discovery_metrics(store: Any, campaign: str, oracle_key: str, threshold: float = STABLE_EV) -> dict[str, Any]:
    """The campaign's discovery counts over its generated labels under ``oracle_key`` (seeds and data-set entries
    left out): how many candidates were evaluated (``n_evaluated``, failed ones included), stable (energy above hull
    <= ``threshold`` eV/atom), stable and known, and S.U.N.: stable, unique (relaxed structures that match another
    count once) and novel; ``sun_rate`` is S.U.N. per evaluated candidate."""
    given = {cid for source in KNOWN_SOURCES for cid in store.candidate_ids(campaign, source)}
    cursor = store.evaluations.find({"campaign": campaign, "oracle_key": oracle_key}, {"candidate_id": 1})
    n_evaluated = len({d["candidate_id"] for d in cursor} - given)
    labels = [e for e in store.labelled(campaign, oracle_key) if e.candidate_id not in given]
    stable = [e for e in labels if e.energy_above_hull is not None and e.energy_above_hull <= threshold]
    novel = [e for e in stable if not is_known(e) and e.relaxed_structure]
    unique = deduplicate([Structure.from_dict(e.relaxed_structure) for e in novel])  # type: ignore[arg-type]
    return {
        "n_evaluated": n_evaluated,
        "n_stable": len(stable),
        "n_stable_known": sum(is_known(e) for e in stable),
        "n_sun": len(unique),
        "sun_rate": len(unique) / n_evaluated if n_evaluated else 0.0,
        "stable_threshold_eV_per_atom": float(threshold),
    }


__all__ = [
    "STABLE_EV",
    "MPStructures",
    "NoveltyChecker",
    "check_labels",
    "discovery_metrics",
    "is_known",
    "mp_structure_fetcher",
    "needs_relaxed_check",
    "reference_phases",
]
