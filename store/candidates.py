"""Register-or-match: write structures the campaign has not seen, find the ids of those it has.

Used for every way a structure enters a campaign: seeds, generated candidates, replay pools and
labelled public data sets. Identity is :mod:`structures.identity` (coarse formula hash, then
StructureMatcher), the same everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pymatgen.core import Structure

from core import __version__
from store.documents import KNOWN_SOURCES, CandidateDoc, Novelty, Provenance
from store.repository import CandidateStore
from structures.identity import coarse_fingerprint, same_structure

_CAMPAIGN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def check_campaign_name(value: str) -> str:
    """``value`` if it is a valid campaign name, else ValueError (it names ids and Prefect artifacts)."""
    if not _CAMPAIGN.fullmatch(value):
        raise ValueError("use lowercase letters, digits and dashes, at most 63 (it names Prefect artifacts)")
    return value


def register_structures(
    store: CandidateStore,
    *,
    campaign: str,
    round_index: int,
    items: list[tuple[Structure, dict[str, Any]]],
    limit: int,
    novelty: Callable[[Structure], Novelty] | None = None,
) -> tuple[list[str], list[str]]:
    """Store structures the campaign has not seen (StructureMatcher against the store and each other).

    Safe when several processes register at once: an id taken meanwhile is re-read and compared.

    Args:
        items: (structure, source fields of CandidateDoc: source, parent, labels, ...) pairs.
        limit: most new documents to write.
        novelty: tells a new structure known or novel (``store.novelty.NoveltyChecker.check``), asked once per
            document written; seeds and data-set entries are known by construction. None: not checked.

    Returns:
        (ids of the items in input order, the existing id for duplicates and "" for items left out by
        ``limit``; ids newly written).
    """
    fps = [coarse_fingerprint(s) for s, _ in items]
    known: dict[str, dict[str, Structure]] = {}
    for doc in store.find_by_fingerprints(campaign, fps):
        known.setdefault(doc.fingerprint, {})[doc.id] = Structure.from_dict(doc.structure)
    ids: list[str] = []
    new_ids: list[str] = []
    provenance = Provenance(campaign=campaign, round=round_index, code_version=__version__)
    for (structure, source), fp in zip(items, fps, strict=True):
        group = known.setdefault(fp, {})
        match = next((cid for cid, other in group.items() if same_structure(structure, other)), None)
        if match is None and len(new_ids) < limit:
            if novelty is not None and source.get("source") not in KNOWN_SOURCES and "novelty" not in source:
                source = {**source, "novelty": novelty(structure)}
            match = _insert_new(store, campaign, provenance, structure, fp, group, source)
            if match in group and group[match] is structure:
                new_ids.append(match)
        ids.append(match or "")
    return ids, new_ids


def _insert_new(
    store: CandidateStore,
    campaign: str,
    provenance: Provenance,
    structure: Structure,
    fp: str,
    group: dict[str, Structure],
    source: dict[str, Any],
) -> str:
    """Write ``structure`` under the first free id of its fingerprint; returns the id it ended up with."""
    base = f"{campaign}-{fp}"
    for k in range(1, 10_000):
        cid = base if k == 1 else f"{base}-{k}"
        if cid in group:
            continue
        doc = CandidateDoc.from_structure(structure, cid=cid, fingerprint=fp, provenance=provenance, **source)
        if store.insert_candidate(doc):
            group[cid] = structure
            return cid
        # taken by another process meanwhile: the same structure, or another polymorph
        other = store.get_candidates([cid])
        if other:
            group[cid] = Structure.from_dict(other[0].structure)
            if same_structure(structure, group[cid]):
                return cid
    raise RuntimeError(f"no free candidate id for fingerprint {fp}")
