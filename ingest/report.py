"""Cleaning settings and the cleaning report (pydantic): what was kept, changed or dropped, and why."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

IssueKind = Literal[
    "malformed_structure",
    "unknown_element",
    "missing_structure",
    "partial_occupancy",
    "ordering_failed",
    "overlapping_sites",
    "nan_label",
    "label_out_of_bounds",
    "censored_label",
    "no_labels",
    "duplicate",
    "conflicting_duplicate",
]
"""Reasons a record is listed in the report."""

Action = Literal["dropped", "modified", "kept"]
"""What cleaning did with the record: removed it, changed it (ordered, label removed, merged), or only noted it."""


class CleaningConfig(BaseModel):
    """Knobs of the cleaning step. The defaults keep everything usable and drop only what is broken."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partial_occupancy: Literal["order", "skip", "keep"] = Field(
        "order",
        description="Partially occupied structures: 'order' them (see `ordering`), 'skip' (drop) them, or 'keep' them "
        "disordered (composition-based models can still use them).",
    )
    ordering: Literal["deterministic", "ewald"] = Field(
        "deterministic",
        description="'deterministic': per group of equivalent sites, species are assigned to sites in proportion to "
        "their occupancies (largest remainder, in site order; vacancies removed) — fast, not energy-ranked. 'ewald': "
        "pymatgen's OrderDisorderedStructureTransformation on oxidation-state-decorated structures (lowest Ewald "
        "energy; slow on large cells), falling back to 'deterministic' when it fails.",
    )
    max_ewald_sites: int = Field(
        24,
        ge=1,
        description="'ewald' ordering is tried only on cells with at most this many sites (combinatorics explode).",
    )
    min_distance: float = Field(
        0.5,
        ge=0.0,
        description="Drop structures with two sites closer than this (Å); catches overlapping split sites after "
        "ordering. 0 disables the check.",
    )
    deduplicate: bool = Field(
        True,
        description="Drop structures that StructureMatcher finds equivalent to an earlier record of the same reduced "
        "formula. Composition-only records are never merged.",
    )
    match_scale: bool = Field(
        False,
        description="StructureMatcher's `scale`: False (default) keeps copies at different volumes (e.g. strained "
        "cells) as distinct records; True treats volume-scaled copies as duplicates, as the candidate store does.",
    )
    conflicts: Literal["keep_first", "mean", "drop_all"] = Field(
        "keep_first",
        description="Duplicates whose labels disagree (beyond `label_rtol`/`label_atol`): keep the first record's "
        "labels, replace them by the mean, or drop every copy.",
    )
    label_rtol: float = Field(0.05, ge=0.0, description="Relative tolerance under which duplicate labels agree.")
    label_atol: float = Field(
        0.05, ge=0.0, description="Absolute tolerance under which duplicate labels agree (units of the property)."
    )
    label_bounds: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict,
        description="Property -> (lowest, highest) plausible value, in the property's units; values outside are "
        "removed from the record. Merged over the source's own defaults (e.g. perov5 heat_all in [-10, 10] eV/atom).",
    )
    censored_labels: Literal["bound", "drop"] = Field(
        "bound",
        description="Labels reported only as a bound (OBELiX '<1E-10' S/cm): use the bound as the value, or drop it.",
    )
    require_label: bool = Field(
        True,
        description="Drop records left with no valid label (only for data sets that declare properties; an "
        "unlabelled folder of structures is kept whole).",
    )
    require_structure: bool = Field(
        False, description="Drop records that have only a composition (OBELiX entries without a CIF)."
    )


class Issue(BaseModel):
    """One thing cleaning noticed about one record."""

    model_config = ConfigDict(frozen=True)

    record_id: str = Field(description="Id of the input record (row index or source id).")
    kind: IssueKind = Field(description="Category of the problem.")
    action: Action = Field(description="What cleaning did about it.")
    message: str = Field(description="Human-readable reason, e.g. the parser error or the out-of-bounds value.")


class CleaningReport(BaseModel):
    """Counts and per-record issues of one cleaning run. Every input row is kept or listed with a reason."""

    model_config = ConfigDict(frozen=False)

    n_input: int = Field(0, description="Rows read from the source.")
    n_kept: int = Field(0, description="Records in the cleaned data set.")
    n_dropped: int = Field(0, description="Rows removed; each has at least one issue with action 'dropped'.")
    n_ordered: int = Field(0, description="Partially occupied structures that were ordered.")
    n_composition_only: int = Field(0, description="Kept records without a structure.")
    config: CleaningConfig = Field(default_factory=CleaningConfig, description="Settings the report was made with.")
    issues: list[Issue] = Field(default_factory=list, description="Per-record issues, in input order.")

    def counts(self) -> dict[str, int]:
        """Issues per ``kind:action``, e.g. ``{'duplicate:dropped': 3}``."""
        return dict(sorted(Counter(f"{i.kind}:{i.action}" for i in self.issues).items()))

    def by_kind(self, kind: str) -> list[Issue]:
        """The issues of one kind."""
        return [i for i in self.issues if i.kind == kind]

    def dropped_ids(self) -> set[str]:
        """Ids of the rows that were removed."""
        return {i.record_id for i in self.issues if i.action == "dropped"}

    def summary(self) -> str:
        """One line: input, kept, dropped, and the issue counts."""
        parts = ", ".join(f"{k} {v}" for k, v in self.counts().items())
        return f"{self.n_input} rows read, {self.n_kept} kept, {self.n_dropped} dropped" + (
            f" ({parts})" if parts else ""
        )
