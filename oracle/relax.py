"""Relax crystal structures with a machine-learned potential (ASE optimizers).

``relax_structure`` never raises for a bad structure: every problem ends as a result with
``status="failed"`` and a one-line ``reason``. Only an invalid configuration (unknown potential)
raises :class:`~core.errors.ConfigError`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE
from ase.optimize.optimize import Optimizer
from pydantic import BaseModel, ConfigDict, Field
from pymatgen.core import Element, Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from oracle.formation import FormationReferences
from oracle.potentials import DEFAULT_POTENTIAL, PointEvaluation, Potential, get_potential

_OPTIMIZERS = {"FIRE": FIRE, "BFGS": BFGS}


class RelaxConfig(BaseModel):
    """Knobs of one relaxation step."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    potential: str = Field(
        DEFAULT_POTENTIAL, description="Potential spec: 'chgnet', 'chgnet:<model>' or 'matgl:<name|folder>'."
    )
    fmax: float = Field(
        0.1,
        gt=0,
        description="Force convergence threshold (eV/Å); with cell relaxation "
        "it also bounds the cell-filter stress term.",
    )
    max_steps: int = Field(200, ge=0, description="Maximum optimizer steps; 0 = single-point evaluation.")
    relax_cell: bool = Field(True, description="Relax the cell (FrechetCellFilter) as well as positions.")
    optimizer: Literal["FIRE", "BFGS"] = Field("FIRE", description="ASE optimizer.")
    max_force_abort: float = Field(
        50.0, gt=0, description="Abort as 'exploding' when any atomic force exceeds this (eV/Å)."
    )
    max_volume_change: float = Field(
        0.5, gt=0, description="Fail when |V_relaxed/V_initial - 1| exceeds this (fraction)."
    )
    min_distance: float = Field(0.5, ge=0, description="Fail before starting when two atoms are closer than this (Å).")
    timeout_s: float = Field(
        600.0,
        gt=0,
        description="Time limit per structure (s), checked every step: its share of each batched evaluation (the "
        "call's wall time over the structures in it) plus its own optimizer steps, so the limit does not depend on "
        "oracle.batch_size.",
    )


class RelaxationResult(BaseModel):
    """Outcome of relaxing one structure with one potential."""

    status: Literal["converged", "unconverged", "failed"] = Field(
        description="'converged': forces below fmax; 'unconverged': max_steps reached (energies still "
        "recorded); 'failed': see reason."
    )
    reason: str = Field("", description="One-line explanation for 'failed' or 'unconverged' (or notes).")
    formula: str = Field(description="Reduced formula of the input structure.")
    n_sites: int = Field(description="Number of sites in the cell.")
    energy_total: float | None = Field(None, description="Final total energy of the cell (eV).")
    energy_per_atom: float | None = Field(None, description="Final energy per atom (eV/atom).")
    initial_energy_per_atom: float | None = Field(
        None, description="Energy per atom of the input structure before relaxation (eV/atom)."
    )
    formation_energy_per_atom: float | None = Field(
        None, description="Formation energy vs elemental references of the same potential (eV/atom)."
    )
    max_force: float | None = Field(None, description="Largest final atomic force norm (eV/Å).")
    n_steps: int = Field(0, description="Optimizer steps taken.")
    energy_trajectory: list[float] = Field(
        default_factory=list, description="Energy per atom at each optimizer step, the input first (eV/atom)."
    )
    volume_change: float | None = Field(
        None, description="Fractional volume change, V_relaxed/V_initial - 1 (dimensionless)."
    )
    relaxed_structure: dict[str, Any] | None = Field(
        None, description="Relaxed structure as pymatgen Structure.as_dict() (Å)."
    )
    potential: str = Field(description="Potential spec used.")
    potential_version: str = Field(description="Potential package and model version.")
    checkpoint_sha256: str | None = Field(None, description="sha256 (hex) of the potential's checkpoint file.")
    elapsed_s: float = Field(description="Wall-clock time of this relaxation (s).")
    fmax: float = Field(description="Force convergence threshold used (eV/Å).")
    max_steps: int = Field(description="Step limit used.")


class _Abort(Exception):
    """Raised inside the optimizer loop to stop a relaxation with a reason."""


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def right_handed(structure: Structure) -> Structure:
    """The same crystal on a right-handed lattice (positive determinant).

    Some files (pymatgen's bundled LiFePO4.json among them) use a left-handed cell, for which CHGNet
    (0.4.2) returns the stress with the wrong sign: a cell relaxation then runs uphill (LiNiPO4 derived
    from it: volume x2.4, energy +0.5 eV/atom). Negating all three lattice vectors and the fractional
    coordinates keeps every Cartesian position and flips the handedness.
    """
    if np.linalg.det(structure.lattice.matrix) > 0:
        return structure
    return Structure(
        Lattice(-structure.lattice.matrix),
        structure.species,
        -structure.frac_coords,
        site_properties=structure.site_properties,
    )


def _clean_structure(structure: Structure) -> Structure:
    """Plain elements, no oxidation states or site properties (these confuse the ASE adaptor), right-handed."""
    species = [Element(site.specie.symbol) for site in structure]
    return right_handed(Structure(structure.lattice, species, structure.frac_coords))


def _closest_pair(structure: Structure, cutoff: float) -> float | None:
    """The shortest interatomic distance below ``cutoff`` (periodic images included), else None."""
    if cutoff <= 0:
        return None
    _, _, _, distances = structure.get_neighbor_list(r=cutoff)
    return float(np.min(distances)) if len(distances) else None


def _max_force(forces: np.ndarray) -> float:
    return float(np.linalg.norm(forces, axis=1).max()) if len(forces) else 0.0


def _check_finite(energy: float, forces: np.ndarray, where: str) -> None:
    if not math.isfinite(energy):
        raise _Abort(f"non-finite energy (NaN/inf) {where}")
    if not np.all(np.isfinite(forces)):
        raise _Abort(f"non-finite forces (NaN/inf) {where}")


@dataclass(eq=False, kw_only=True)
class _Job:
    """One structure relaxing inside a batch."""

    index: int
    clean: Structure
    atoms: Atoms
    optimizer: Optimizer
    volume0: float
    symbols0: list[str]
    partial: dict[str, Any] = field(default_factory=dict)
    spent_s: float = 0.0
    """Its own share of the batch's time (s): each batched evaluation's wall time split over the structures in
    it, plus its optimizer steps. ``timeout_s`` compares this, so a structure's limit does not shrink with the
    batch size."""


def _attach(atoms: Atoms, point: PointEvaluation) -> None:
    """Make ``atoms`` answer energy/forces/stress from ``point`` (until it moves)."""
    atoms.calc = SinglePointCalculator(
        atoms, energy=point.energy, free_energy=point.energy, forces=point.forces, stress=point.stress
    )


def _evaluate(potential: Potential, jobs: Sequence[_Job]) -> dict[int, PointEvaluation | Exception]:
    """One batched call for every job; on an error, each job alone so only the culprit fails."""
    if not jobs:
        return {}
    try:
        points = potential.evaluate([job.atoms for job in jobs])
        return {job.index: point for job, point in zip(jobs, points, strict=True)}
    except Exception as exc:
        if len(jobs) == 1:
            return {jobs[0].index: exc}
    out: dict[int, PointEvaluation | Exception] = {}
    for job in jobs:
        try:
            out[job.index] = potential.evaluate([job.atoms])[0]
        except Exception as exc:
            out[job.index] = exc
    return out


def _check_point(job: _Job, point: PointEvaluation, config: RelaxConfig, where: str) -> None:
    """Raise _Abort for a non-finite, exploding or absurdly re-sized state of ``job``."""
    _check_finite(point.energy, point.forces, where)
    force = _max_force(point.forces)
    if force > config.max_force_abort:
        raise _Abort(f"exploding: max force {force:.1f} eV/Å > {config.max_force_abort} eV/Å {where}")
    change = job.atoms.get_volume() / job.volume0 - 1.0
    if not math.isfinite(change) or abs(change) > config.max_volume_change:
        raise _Abort(f"volume change {change:+.2f} exceeds ±{config.max_volume_change} {where}")


def _prepare(structure: Structure, config: RelaxConfig) -> Structure | str:
    """The cleaned structure ready to relax, or the reason it cannot be."""
    if len(structure) == 0:
        return "empty structure"
    if not structure.is_ordered:
        disordered = sorted({str(site.species) for site in structure if not site.is_ordered})
        return f"partial occupancy / disordered sites not supported: {', '.join(disordered)}"
    try:
        clean = _clean_structure(structure)
    except Exception as exc:
        return f"unsupported species: {type(exc).__name__}: {exc}"
    try:
        closest = _closest_pair(clean, config.min_distance)
    except Exception as exc:
        return f"cannot compute distances: {type(exc).__name__}: {exc}"
    if closest is not None:
        return f"atoms too close: {closest:.3f} Å < min_distance {config.min_distance} Å"
    return clean


def _new_job(index: int, prepared: Structure, config: RelaxConfig) -> _Job:
    """The optimizer (and cell filter) of one prepared structure."""
    atoms = AseAtomsAdaptor.get_atoms(prepared)
    optimizable = FrechetCellFilter(atoms) if config.relax_cell else atoms
    return _Job(
        index=index,
        clean=prepared,
        atoms=atoms,
        optimizer=_OPTIMIZERS[config.optimizer](optimizable, logfile=None),
        volume0=atoms.get_volume(),
        symbols0=atoms.get_chemical_symbols(),
    )


def _record_point(job: _Job, point: Any) -> None:
    """Attach a checked evaluation to the job's atoms and keep its energies (eV, eV/atom), max force (eV/Å), step
    and volume change: what a failure later in the relaxation still reports."""
    _attach(job.atoms, point)
    n_atoms = len(job.atoms)
    if job.optimizer.nsteps == 0:
        job.partial["initial_energy_per_atom"] = point.energy / n_atoms
    job.partial.setdefault("energy_trajectory", []).append(float(point.energy / n_atoms))
    job.partial.update(
        energy_total=point.energy,
        energy_per_atom=point.energy / n_atoms,
        max_force=_max_force(point.forces),
        n_steps=int(job.optimizer.nsteps),
        volume_change=float(job.atoms.get_volume() / job.volume0 - 1.0),
    )


def _advance(
    job: _Job,
    config: RelaxConfig,
    references: FormationReferences | None,
    finish: Callable[..., None],
    fail: Callable[[_Job, str], None],
) -> bool:
    """After an evaluation: finish ``job`` (converged, out of steps, out of time) or take one optimizer step;
    True when it goes on."""
    opt = job.optimizer
    gradient = opt.optimizable.get_gradient()
    if opt.optimizable.converged(gradient, config.fmax):
        _complete(job, config, references, finish, converged=True)
        return False
    if opt.nsteps >= config.max_steps:
        _complete(job, config, references, finish, converged=False)
        return False
    if job.spent_s > config.timeout_s:
        fail(job, f"timeout after {job.spent_s:.1f} s of its own (limit {config.timeout_s} s)")
        return False
    t_step = time.monotonic()
    try:
        opt.step()
    except Exception as exc:
        fail(job, f"relaxation error: {type(exc).__name__}: {exc}")
        return False
    job.spent_s += time.monotonic() - t_step
    opt.nsteps += 1
    return True


def relax_batch(
    structures: Sequence[Structure],
    config: RelaxConfig | None = None,
    references: FormationReferences | None = None,
    *,
    potential: Potential | None = None,
    on_result: Callable[[int, RelaxationResult], None] | None = None,
) -> list[RelaxationResult]:
    """Relax ``n`` structures in lockstep, one batched potential call per optimizer step.

    Each structure has its own ASE optimizer (and cell filter), so its trajectory is the one a
    sequential ``optimizer.run(fmax, steps)`` would take; only the energy/force/stress evaluations of
    all unfinished structures are batched (one forward pass on CHGNet). Failures are reported in the
    results, never raised. ``elapsed_s`` counts from the start of the batch; ``timeout_s`` is per structure (its
    share of each batched evaluation plus its own steps, ``_Job.spent_s``).

    Args:
        on_result: called as ``on_result(i, result)`` as soon as structure ``i`` is finished.

    Returns:
        ``n`` results in input order.
    """
    config = config or RelaxConfig()
    potential = potential or get_potential(config.potential)
    start = time.monotonic()
    results: list[RelaxationResult | None] = [None] * len(structures)
    base = {
        "potential": potential.name,
        "potential_version": potential.version,
        "checkpoint_sha256": getattr(potential, "checkpoint_sha256", None),
        "fmax": config.fmax,
        "max_steps": config.max_steps,
    }

    def finish(index: int, **fields: Any) -> None:
        structure = structures[index]
        try:
            formula = structure.composition.reduced_formula
        except Exception:  # e.g. empty structure
            formula = ""
        fields["reason"] = _one_line(fields.get("reason", ""))
        result = RelaxationResult(
            formula=formula, n_sites=len(structure), elapsed_s=time.monotonic() - start, **base, **fields
        )
        results[index] = result
        if on_result is not None:
            on_result(index, result)

    jobs: list[_Job] = []
    for i, structure in enumerate(structures):
        prepared = _prepare(structure, config)
        if isinstance(prepared, str):
            finish(i, status="failed", reason=prepared)
            continue
        jobs.append(_new_job(i, prepared, config))

    def fail(job: _Job, reason: str) -> None:
        finish(job.index, status="failed", reason=reason, **job.partial)

    with warnings.catch_warnings():
        # chgnet 0.4 warns on every evaluation about a tensor->scalar conversion it does internally
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
        active = jobs
        while active:
            t_eval = time.monotonic()
            points = _evaluate(potential, active)
            share = (time.monotonic() - t_eval) / len(active)
            for job in active:
                job.spent_s += share
            evaluated: list[_Job] = []
            for job in active:
                point = points[job.index]
                opt = job.optimizer
                where = "for the initial structure" if opt.nsteps == 0 else f"at step {opt.nsteps}"
                if isinstance(point, Exception):
                    fail(job, f"relaxation error: {type(point).__name__}: {point}")
                    continue
                try:
                    _check_point(job, point, config, where)
                except _Abort as exc:
                    fail(job, str(exc))
                    continue
                _record_point(job, point)
                evaluated.append(job)
            active = [job for job in evaluated if _advance(job, config, references, finish, fail)]
    return [r for r in results if r is not None]


def _complete(
    job: _Job,
    config: RelaxConfig,
    references: FormationReferences | None,
    finish: Callable[..., None],
    *,
    converged: bool,
) -> None:
    """Post-checks, relaxed structure and formation energy of a finished job."""
    partial = job.partial
    atoms = job.atoms
    relaxed_atoms = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=True)
    relaxed = AseAtomsAdaptor.get_structure(relaxed_atoms)
    if relaxed_atoms.get_chemical_symbols() != job.symbols0 or relaxed.composition != job.clean.composition:
        finish(job.index, status="failed", reason="composition changed during relaxation", **partial)
        return
    if converged:
        reason = ""
    elif config.max_steps == 0:
        reason = f"single point (max_steps=0): forces or stress above fmax {config.fmax} eV/Å"
    else:
        reason = f"not converged within {config.max_steps} steps (fmax {config.fmax} eV/Å)"
    formation = None
    if references is not None:
        try:
            formation = references.formation_energy_per_atom(job.clean.composition, partial["energy_total"])
        except Exception as exc:  # a missing reference must not lose the relaxation
            reason = "; ".join(filter(None, [reason, f"no formation energy: {type(exc).__name__}: {exc}"]))
    finish(
        job.index,
        status="converged" if converged else "unconverged",
        reason=reason,
        formation_energy_per_atom=formation,
        relaxed_structure=relaxed.as_dict(),
        **partial,
    )


def relax_structure(
    structure: Structure,
    config: RelaxConfig | None = None,
    references: FormationReferences | None = None,
    *,
    potential: Potential | None = None,
) -> RelaxationResult:
    """Relax one structure; failures are reported in the result, never raised."""
    return relax_batch([structure], config, references, potential=potential)[0]


def relax_many(
    structures: Sequence[Structure],
    config: RelaxConfig | None = None,
    references: FormationReferences | None = None,
    *,
    batch_size: int = 8,
    on_result: Callable[[int, RelaxationResult], None] | None = None,
) -> list[RelaxationResult]:
    """Relax structures in lockstep batches of ``batch_size``; one failure never stops the others.

    Args:
        on_result: called as ``on_result(i, result)`` (``i`` indexes ``structures``) as each finishes.
    """
    config = config or RelaxConfig()
    potential = get_potential(config.potential)  # a bad spec is a ConfigError, raised once up front
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    results: list[RelaxationResult] = []
    for offset in range(0, len(structures), batch_size):
        chunk = structures[offset : offset + batch_size]

        def report(i: int, result: RelaxationResult, offset: int = offset) -> None:
            if on_result is not None:
                on_result(offset + i, result)

        results += relax_batch(chunk, config, references, potential=potential, on_result=report)
    return results
