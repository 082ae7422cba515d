"""Public data sets as labelled seeds of a campaign: candidates with ``source="dataset"`` and their labels."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.records import Dataset


@dataclass(frozen=True, kw_only=True)
class SeedResult:
    """What :func:`seed_store` did."""

    n_records: int
    """Records considered (with a structure, up to ``limit`` new ones)."""
    new_ids: list[str]
    """Candidate ids written now (empty on a re-run)."""
    existing: int
    """Records that matched a candidate already in the campaign."""
    skipped_no_structure: int
    """Composition-only records (cannot be candidates)."""


def seed_store(dataset: Dataset, store, *, campaign: str, limit: int | None = None) -> SeedResult:  # type: ignore[no-untyped-def]
    """Write the data set's structures into ``campaign`` as candidates with ``source="dataset"``.

    Idempotent: structures the campaign already holds (StructureMatcher, as for generated candidates) are not
    written again. ``labels`` carries the record's properties (units in ``dataset.properties``), ``parent``
    is ``<dataset name>:<record id>``. ``limit`` caps the number of new candidates (None: all).
    """
    from core.errors import ConfigError
    from store.candidates import check_campaign_name, register_structures

    try:
        check_campaign_name(campaign)
    except ValueError as exc:
        raise ConfigError(f"invalid config value for campaign: {exc}") from None
    with_structure = [r for r in dataset.records if r.structure is not None]
    items = [
        (r.structure, {"source": "dataset", "parent": f"{dataset.name}:{r.id}", "labels": dict(r.labels)})
        for r in with_structure
    ]
    cap = len(items) if limit is None else max(0, int(limit))
    ids, new_ids = register_structures(store, campaign=campaign, round_index=0, items=items, limit=cap)
    written = set(new_ids)
    existing = sum(1 for cid in ids if cid and cid not in written)
    return SeedResult(
        n_records=len(items),
        new_ids=new_ids,
        existing=existing,
        skipped_no_structure=len(dataset.records) - len(with_structure),
    )
