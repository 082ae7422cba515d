"""Documents of the candidate store. Units are in the field descriptions.

Every document carries :class:`Provenance`: which campaign and round wrote it, with which model,
acquisition settings, oracle and code version, and when.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field


def utcnow() -> datetime:
    """Timezone-aware now (UTC), truncated to milliseconds as BSON stores it."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class _Doc(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def to_mongo(self) -> dict[str, Any]:
        """Dict for pymongo, with ``id`` stored as ``_id``."""
        data = self.model_dump(mode="python", by_alias=True)
        return data

    @classmethod
    def from_mongo(cls, data: dict[str, Any]) -> _Doc:
        """Parse a document read from MongoDB."""
        return cls.model_validate(data)


class Provenance(BaseModel):
    """Who wrote a document, with what, and when."""

    model_config = ConfigDict(extra="ignore")

    campaign: str = Field(description="Campaign (discovery-loop run name) that wrote the document.")
    round: int = Field(description="Round index; 0 labels the seeds.")
    code_version: str = Field(description="Version of ai-battery-materials.")
    created_at: datetime = Field(default_factory=utcnow, description="UTC time of writing.")
    model_version: str | None = Field(None, description="Surrogate model used for predictions (None: none yet).")
    acquisition: dict[str, Any] | None = Field(None, description="Acquisition config in force (None: not acquired).")
    oracle: str | None = Field(None, description="Oracle potential name (None: not evaluated).")
    oracle_version: str | None = Field(None, description="Oracle potential and package versions.")


#: Sources whose candidates are known by construction: the campaign's seeds and labelled data-set entries.
KNOWN_SOURCES: tuple[str, ...] = ("seed", "dataset")


class Novelty(BaseModel):
    """Whether a structure is a known material or a new one, and what it was checked against (store.novelty).

    Known: it matches (StructureMatcher, same reduced formula) a reference phase of the hull (a phase file's MP
    phase, or MP's own online with ``MP_API_KEY``; not the hull-completion analogues the oracle computed), a seed
    of the campaign or a labelled data-set entry. Novel: none of those.
    """

    model_config = ConfigDict(extra="ignore")

    status: Literal["known", "novel"] = Field(description="'known' (matches a known structure) or 'novel'.")
    match: str | None = Field(
        None,
        description="Id of the known structure it matches: an MP id ('mp-1234'; phase file or MP online), "
        "'seed:<name>' or '<data set>:<id>'; None when novel.",
    )
    match_source: str | None = Field(
        None,
        description="Where that structure comes from: 'mp_20', 'mp_20_test', 'mpts_52', 'mp-api', 'seed', 'dataset'.",
    )
    checked_against: str = Field(
        "", description="What was searched, e.g. 'seeds, mp_20, mp_20_test, mpts_52, mp-api' (offline: no mp-api)."
    )
    checked_on: Literal["generated", "relaxed"] = Field(
        "generated", description="Which structure was compared: as generated (or seeded), or relaxed by the oracle."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def novel(self) -> int:
        """1 when novel, 0 when known: stored, so ``--where 'novel >= 1'`` filters like any number."""
        return int(self.status == "novel")

    @classmethod
    def known_by_source(cls, source: str, parent: str | None) -> Novelty | None:
        """A seed ('seed:<name>') or a data-set entry ('<data set>:<id>') is known by construction; None otherwise."""
        if source == "seed":
            match = f"seed:{parent}" if parent else "seed"
            return cls(status="known", match=match, match_source="seed", checked_against="source")
        if source == "dataset":
            return cls(status="known", match=parent, match_source="dataset", checked_against="source")
        return None


class CandidateDoc(_Doc):
    """A structure that was generated (or seeded); unique by structure."""

    id: str = Field(alias="_id", description="'<campaign>-<fingerprint>', plus '-<k>' for further polymorphs.")
    campaign: str = Field(description="Campaign the candidate belongs to (campaigns do not share pools).")
    fingerprint: str = Field(description="Hash of the reduced formula: polymorphs share it, StructureMatcher decides.")
    formula: str = Field(description="Reduced formula.")
    elements: list[str] = Field(description="Sorted element symbols.")
    chemsys: str = Field(description="Chemical system, e.g. 'Li-O'.")
    n_sites: int = Field(description="Sites in the cell.")
    structure: dict[str, Any] = Field(description="pymatgen Structure.as_dict() (Å).")
    source: str = Field(
        description="How it was made: 'seed', a generator's kind ('substitution', 'ion_exchange', ...) or "
        "'dataset' (a labelled entry of a public data set, see ingest.seed_store)."
    )
    labels: dict[str, float] = Field(
        default_factory=dict,
        description="Properties known from the source data set (name -> value; units as in the data set's "
        "properties, e.g. heat_all eV/atom); empty for generated candidates.",
    )
    parent: str | None = Field(None, description="Parent structure name or id (None for seeds).")
    substitutions: dict[str, str] = Field(default_factory=dict, description="Old species -> new species.")
    probability: float = Field(1.0, description="Data-mined substitution probability (dimensionless).")
    generator: str | None = Field(
        None, description="Registered generator that made it ('substitution', 'pyxtal', ...)."
    )
    generator_version: str = Field(
        "", description="Code or model version of that generator (e.g. 'wyckoff-transformer-v1')."
    )
    parents: list[str] = Field(default_factory=list, description="Parent structures' names or ids.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="What the generator was run with (space group, Wyckoff sites, seed, ...)."
    )
    condition: str = Field("", description="Property condition it was sampled under ('' for none).")
    status: Literal["generated", "acquired", "evaluated", "failed"] = Field("generated")
    predictions: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Latest predictions, outcome -> {'mean', 'std'} in the outcome's units (e.g. e_above_hull "
        "eV/atom, band_gap eV, log10_conductivity log10 S/cm); empty until a round predicted it.",
    )
    oracle: dict[str, Any] = Field(
        default_factory=dict,
        description="Summary of its latest oracle result, kept by the store for browsing (store.browse): status, "
        "oracle_key, formation_energy_per_atom and e_above_hull (eV/atom), hull_thin, band_gap (eV) and "
        "log10_conductivity (log10 S/cm) of the relaxed structure, average_voltage (V), capacity_mAh_g, "
        "window_low_V / window_high_V (V); empty until evaluated.",
    )
    novelty: Novelty | None = Field(
        None,
        description="Known or novel (store.novelty): checked when it is registered (seeds and data-set entries are "
        "known), then on its relaxed structure when it is labelled (that evaluation's verdict); None: not checked "
        "(a store written before the check existed).",
    )
    predicted_by: str | None = Field(None, description="Loop model version behind `predictions`.")
    predicted_round: int | None = Field(None, description="Round whose predict stage wrote `predictions`.")
    provenance: Provenance

    @classmethod
    def from_structure(
        cls, structure: Any, *, cid: str, fingerprint: str, provenance: Provenance, **source: Any
    ) -> CandidateDoc:
        """The document of a pymatgen ``structure`` stored as ``cid``; ``source`` fills source, parent, labels, ...."""
        comp = structure.composition
        elements = sorted(el.symbol for el in comp.elements)
        if source.get("novelty") is None:
            source = {**source, "novelty": Novelty.known_by_source(source.get("source", ""), source.get("parent"))}
        return cls(
            _id=cid,
            campaign=provenance.campaign,
            fingerprint=fingerprint,
            formula=comp.reduced_formula,
            elements=elements,
            chemsys="-".join(elements),
            n_sites=len(structure),
            structure=structure.as_dict(),
            provenance=provenance,
            **source,
        )


class EvaluationDoc(_Doc):
    """One oracle result for one candidate (unique per candidate and oracle settings)."""

    id: str = Field(alias="_id", description="'<candidate id>:<oracle key>'.")
    candidate_id: str
    campaign: str = Field(description="Campaign of the candidate.")
    oracle_key: str = Field(description="Potential and relaxation settings that define this oracle.")
    formula: str
    elements: list[str]
    status: Literal["converged", "unconverged", "failed"] = Field(description="Relaxation outcome.")
    reason: str = Field("", description="Why it failed or did not converge; empty when converged.")
    energy_total: float | None = Field(None, description="Total energy of the relaxed cell (eV).")
    energy_per_atom: float | None = Field(None, description="Energy per atom from the potential (eV/atom).")
    corrected_energy_per_atom: float | None = Field(
        None,
        description="Energy per atom after the energy correction (MP2020 for potentials that learned raw "
        "GGA/GGA+U energies; equal to energy_per_atom otherwise) (eV/atom).",
    )
    energy_correction_per_atom: float = Field(0.0, description="corrected - raw energy per atom (eV/atom).")
    correction_scheme: str = Field("none", description="'MP2020', 'none (already MP2020)' or 'none'.")
    formation_energy_per_atom: float | None = Field(
        None,
        description="Formation energy of the corrected energy against the elemental references (MP GGA/GGA+U "
        "energies for MP-compatible potentials, else references relaxed with the same potential) (eV/atom).",
    )
    energy_above_hull: float | None = Field(
        None,
        description="Signed energy above the convex hull (eV/atom) of the Materials Project reference phases "
        "of its chemical system (MP-20/MPTS-52 files, MP elemental references, MP's own phases with an API "
        "key), and every other structure the campaign evaluated there; negative: below that hull. Recomputed "
        "at the end of each round. Potentials not on the MP scale: against the elemental references and the "
        "campaign's structures only (>= 0).",
    )
    hull: dict[str, Any] = Field(
        default_factory=dict,
        description="What the hull value rests on: n_phases (reference compounds in the chemical system), "
        "sources (source -> count), thin (True: too few phases to trust a negative value), "
        "hull_formation_energy (eV/atom, the hull at this composition without this structure).",
    )
    decomposition: dict[str, float] = Field(
        default_factory=dict, description="Hull phases (reduced formula -> atom fraction) it decomposes into."
    )
    labels: dict[str, float] = Field(
        default_factory=dict,
        description="Known labels revealed by the replay oracle (property -> value, the pool's units); empty "
        "in discovery mode.",
    )
    properties: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Properties of the relaxed structure from registered property models, outcome -> {'mean', "
        "'std', 'model'} in the outcome's units (band_gap eV, log10_conductivity log10 S/cm); written at the end "
        "of the round that labelled it.",
    )
    electrode: dict[str, Any] | None = Field(
        None,
        description="Intercalation electrode of this Li/Na compound against its de-intercalated counterpart relaxed "
        "by the same oracle (oracle.electrode.ElectrodeResult: average_voltage V vs the metal, capacity_mAh_g, "
        "energy_density_Wh_kg, volume_change fraction, ...); None when not computed.",
    )
    window: dict[str, Any] | None = Field(
        None,
        description="Electrochemical stability window vs the working-ion metal from the grand-potential phase "
        "diagram of the reference phases (oracle.window: low_V, high_V, products, phases used, thin); None when "
        "not computed.",
    )
    transport: dict[str, Any] | None = Field(
        None,
        description="Molecular-dynamics diffusion result (oracle.md.DiffusionResult: D in cm²/s, Nernst-Einstein "
        "conductivity in S/cm, settings and caveat); None when not run.",
    )
    novelty: Novelty | None = Field(
        None,
        description="Known or novel (store.novelty): its candidate's verdict when written, then the verdict on the "
        "relaxed structure (the relax labeler checks it at the end of the round, before the hull).",
    )
    max_force: float | None = Field(None, description="Largest residual force (eV/Å).")
    n_steps: int = Field(0, description="Optimizer steps taken.")
    energy_trajectory: list[float] = Field(
        default_factory=list, description="Energy per atom at each optimizer step, the input first (eV/atom)."
    )
    volume_change: float | None = Field(None, description="Relaxed/initial volume - 1 (fraction).")
    relaxed_structure: dict[str, Any] | None = Field(None, description="pymatgen Structure.as_dict() (Å).")
    potential: str = Field(description="Potential name.")
    potential_version: str = Field(description="Potential/package version.")
    checkpoint_sha256: str | None = Field(
        None, description="sha256 (hex) of the relaxing potential's checkpoint file (None: replay, older stores)."
    )
    refine: dict[str, Any] | None = Field(
        None,
        description="The second tier of a two-tier oracle (OracleConfig.refine): potential, potential_version, "
        "checkpoint_sha256, max_steps (0: single point), status, reason, n_steps, elapsed_s (s), "
        "first_energy_per_atom (the first tier's, eV/atom) and energy_per_atom (the second's); the evaluation's "
        "energies are the refined ones. None: one tier.",
    )
    fmax: float = Field(description="Force convergence criterion (eV/Å).")
    max_steps: int = Field(description="Optimizer step limit (0: single point).")
    elapsed_s: float = Field(description="Wall time of the evaluation (s).")
    provenance: Provenance

    @classmethod
    def for_candidate(
        cls, candidate: CandidateDoc, *, oracle_key: str, provenance: Provenance, **fields: Any
    ) -> EvaluationDoc:
        """The evaluation of ``candidate`` by the labeler ``oracle_key`` (id ``<candidate id>:<key>``)."""
        return cls(
            _id=f"{candidate.id}:{oracle_key}",
            candidate_id=candidate.id,
            campaign=candidate.campaign,
            oracle_key=oracle_key,
            elements=candidate.elements,
            provenance=provenance,
            **{"formula": candidate.formula, "novelty": candidate.novelty, **fields},
        )

    @classmethod
    def from_relaxation(
        cls,
        candidate: CandidateDoc,
        fields: dict[str, Any],
        *,
        oracle_key: str,
        provenance: Provenance,
    ) -> EvaluationDoc:
        """From the fields of a relaxation (``oracle.labelling.relaxation_fields``: energies in eV and
        eV/atom, forces eV/Å, status and reason)."""
        return cls.for_candidate(candidate, oracle_key=oracle_key, provenance=provenance, **fields)

    @classmethod
    def from_known_labels(
        cls,
        candidate: CandidateDoc,
        labels: dict[str, float],
        missing: list[str],
        n_targets: int,
        *,
        oracle_key: str,
        provenance: Provenance,
        source: str,
    ) -> EvaluationDoc:
        """A replayed evaluation: the candidate's known ``labels`` revealed (its structure counts as relaxed);
        failed when none of the ``n_targets`` targets has a label."""
        return cls.for_candidate(
            candidate,
            oracle_key=oracle_key,
            provenance=provenance,
            status="failed" if len(missing) == n_targets else "converged",
            reason=f"no label for {', '.join(missing)} in the pool" if missing else "",
            labels=labels,
            relaxed_structure=candidate.structure,
            potential="replay",
            potential_version=source,
            fmax=0.0,
            max_steps=0,
            elapsed_s=0.0,
        )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def oracle_summary(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The flat summary of an evaluation document (as stored) that its candidate carries in ``oracle``.

    Units: eV/atom (energies), eV (band gap), log10 S/cm, V, mAh/g; missing values are left out.
    """
    hull = evaluation.get("hull") or {}
    properties = evaluation.get("properties") or {}
    electrode = evaluation.get("electrode") or {}
    window = evaluation.get("window") or {}
    values: dict[str, Any] = {
        "formation_energy_per_atom": _number(evaluation.get("formation_energy_per_atom")),
        "e_above_hull": _number(evaluation.get("energy_above_hull")),
        "band_gap": _number((properties.get("band_gap") or {}).get("mean")),
        "band_gap_std": _number((properties.get("band_gap") or {}).get("std")),
        "log10_conductivity": _number((properties.get("log10_conductivity") or {}).get("mean")),
        "log10_conductivity_std": _number((properties.get("log10_conductivity") or {}).get("std")),
        "average_voltage": _number(electrode.get("average_voltage")),
        "capacity_mAh_g": _number(electrode.get("capacity_mAh_g")),
        "window_low_V": _number(window.get("low_V")),
        "window_high_V": _number(window.get("high_V")),
    }
    summary = {k: v for k, v in values.items() if v is not None and v == v}  # drop None and NaN
    summary["status"] = evaluation.get("status", "")
    summary["oracle_key"] = evaluation.get("oracle_key", "")
    if isinstance(hull.get("thin"), bool):
        summary["hull_thin"] = hull["thin"]
    return summary


class BatchEntry(BaseModel):
    """One acquired candidate in a round, with what the model said and what the oracle found."""

    model_config = ConfigDict(extra="ignore")

    candidate_id: str
    formula: str
    n_sites: int
    mean: float | None = Field(None, description="Ensemble mean of the target (eV/atom); None before a model.")
    std: float | None = Field(None, description="Ensemble standard deviation (eV/atom).")
    acquisition_value: float | None = Field(None, description="Acquisition function value at selection.")
    means: dict[str, float] = Field(
        default_factory=dict, description="Ensemble mean per target (target units); empty before a model."
    )
    stds: dict[str, float] = Field(default_factory=dict, description="Ensemble standard deviation per target.")
    status: str = Field("acquired", description="Oracle status once evaluated.")
    formation_energy_per_atom: float | None = Field(None, description="Oracle formation energy (eV/atom).")


class RoundDoc(_Doc):
    """One round of one campaign: what was generated, acquired, evaluated and trained."""

    id: str = Field(alias="_id", description="'<campaign>:<round>'.")
    campaign: str
    round: int
    status: Literal["running", "completed"] = "running"
    started_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None
    config: dict[str, Any] = Field(default_factory=dict, description="LoopConfig of the run (JSON).")
    code_version: str = ""
    n_generated: int = Field(0, description="New unique candidates written this round.")
    n_pool: int = Field(0, description="Unevaluated candidates the batch was chosen from.")
    generation: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Per generator: its quota, how many it produced, passed the filters, were new, and the "
        "rejections by reason.",
    )
    generation_condition: str | None = Field(
        None,
        description="The learned generator's condition this round, from the campaign's objectives and constraints "
        "(e.g. 'band_gap >= 2'; None: unconditioned or no learned generator).",
    )
    acquired: list[BatchEntry] = Field(default_factory=list)
    prediction_model: str | None = Field(None, description="Model version that made the predictions.")
    acquisition_notes: list[str] = Field(
        default_factory=list, description="What acquisition fell back to or left out (e.g. logei -> ucb, diversity)."
    )
    n_evaluated: int = 0
    n_failed: int = 0
    trained_model: str | None = Field(None, description="Model version trained at the end of the round.")
    model_metrics: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per stage.")
    flow_run_id: str | None = Field(None, description="Prefect flow run that completed the round (None: unknown).")
    flow_run_url: str | None = Field(None, description="That flow run's page in the Prefect UI (None: unknown).")
    best: list[dict[str, Any]] = Field(
        default_factory=list, description="Best so far: lowest formation energies (discovery) or targets (replay)."
    )
    metrics: dict[str, Any] = Field(
        default_factory=dict,
        description="Campaign metrics after the round, e.g. in replay mode n_targets_found (cumulative), "
        "n_targets_pool, n_labelled.",
    )


class ModelDoc(_Doc):
    """A trained surrogate ensemble in the model registry.

    Loop models are keyed by (campaign, round). Property models trained on public data by
    ``battery-discovery train`` use ``campaign='models:<name>'``, ``round=version`` and fill the fields
    below ``created_at``; their id is ``'<name>-v<version>'``.
    """

    id: str = Field(alias="_id", description="Model version, '<campaign>-r<round>' (loop) or '<name>-v<version>'.")
    campaign: str
    round: int
    property_name: str
    architecture: str
    n_members: int
    path: str = Field(description="Folder holding the saved ensemble.")
    n_train: int
    metrics: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    code_version: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    name: str | None = Field(None, description="Registry name of a property model (None for loop models).")
    version: int = Field(1, ge=1, description="Version of the named model (1, 2, ... per retraining).")
    unit: str = Field("", description="Property description with its unit, e.g. 'heat of formation (eV/atom)'.")
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, description="EnsembleConfig of the model (epochs, sizes, lr, cutoff in Å, ...)."
    )
    dataset: str = Field("", description="Data set spec it was trained on, e.g. 'perov5:/path/val.csv'.")
    data_hash: str = Field("", description="Content hash of that data set.")
    split: dict[str, Any] = Field(
        default_factory=dict, description="How train/val/test were drawn (source, seed, sizes, ids file)."
    )
