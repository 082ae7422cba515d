"""Relax crystal structures with a machine-learned potential (ASE optimizers).

``relax_structure`` never raises for a bad structure: every problem ends as a result with
``status="failed"`` and a one-line ``reason``. Only an invalid configuration (unknown potential)
raises :class:`~battery_discovery.errors.ConfigError`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from ase import Atoms
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE
from pydantic import BaseModel, ConfigDict, Field
from pymatgen.core import Element, Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from oracle.potentials import DEFAULT_POTENTIAL, Potential, get_potential

if TYPE_CHECKING:
    from oracle.references import ElementalReferences

_OPTIMIZERS = {"FIRE": FIRE, "BFGS": BFGS}


class RelaxConfig(BaseModel):
    """Knobs of one relaxation step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
    timeout_s: float = Field(600.0, gt=0, description="Wall-clock limit per structure (s), checked every step.")


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
    volume_change: float | None = Field(
        None, description="Fractional volume change, V_relaxed/V_initial - 1 (dimensionless)."
    )
    relaxed_structure: dict[str, Any] | None = Field(
        None, description="Relaxed structure as pymatgen Structure.as_dict() (Å)."
    )
    potential: str = Field(description="Potential spec used.")
    potential_version: str = Field(description="Potential package and model version.")
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


def _optimize(
    clean: Structure, config: RelaxConfig, potential: Potential, start: float, partial: dict[str, Any]
) -> tuple[bool, Structure]:
    """Run the optimizer; fill ``partial`` as results appear; raise _Abort on a physical failure."""
    n_sites = len(clean)
    atoms: Atoms = AseAtomsAdaptor.get_atoms(clean)
    symbols_before = atoms.get_chemical_symbols()
    volume_before = atoms.get_volume()
    atoms.calc = potential.calculator()
    energy0 = float(atoms.get_potential_energy())
    forces0 = atoms.get_forces()
    _check_finite(energy0, forces0, "for the initial structure")
    partial["initial_energy_per_atom"] = energy0 / n_sites
    if _max_force(forces0) > config.max_force_abort:
        raise _Abort(f"exploding: initial max force {_max_force(forces0):.1f} eV/Å > {config.max_force_abort} eV/Å")

    optimizable = FrechetCellFilter(atoms) if config.relax_cell else atoms
    optimizer = _OPTIMIZERS[config.optimizer](optimizable, logfile=None)

    def watchdog() -> None:
        partial["n_steps"] = int(optimizer.nsteps)
        elapsed = time.monotonic() - start
        if elapsed > config.timeout_s:
            raise _Abort(f"timeout after {elapsed:.1f} s (limit {config.timeout_s} s)")
        energy = float(atoms.get_potential_energy())
        forces = atoms.get_forces()
        _check_finite(energy, forces, f"at step {optimizer.nsteps}")
        if _max_force(forces) > config.max_force_abort:
            raise _Abort(
                f"exploding: max force {_max_force(forces):.1f} eV/Å > {config.max_force_abort} eV/Å "
                f"at step {optimizer.nsteps}"
            )
        change = atoms.get_volume() / volume_before - 1.0
        if not math.isfinite(change) or abs(change) > config.max_volume_change:
            raise _Abort(f"volume change {change:+.2f} exceeds ±{config.max_volume_change} at step {optimizer.nsteps}")

    optimizer.attach(watchdog, interval=1)
    converged = bool(optimizer.run(fmax=config.fmax, steps=config.max_steps))

    energy = float(atoms.get_potential_energy())
    forces = atoms.get_forces()
    _check_finite(energy, forces, "after relaxation")
    volume_change = atoms.get_volume() / volume_before - 1.0
    partial.update(
        energy_total=energy,
        energy_per_atom=energy / n_sites,
        max_force=_max_force(forces),
        n_steps=int(optimizer.nsteps),
        volume_change=float(volume_change),
    )
    if abs(volume_change) > config.max_volume_change:
        raise _Abort(f"volume change {volume_change:+.2f} exceeds ±{config.max_volume_change}")
    relaxed = AseAtomsAdaptor.get_structure(atoms.copy())  # the copy drops the calculator
    if atoms.get_chemical_symbols() != symbols_before or relaxed.composition != clean.composition:
        raise _Abort("composition changed during relaxation")
    return converged, relaxed


def relax_structure(
    structure: Structure,
    config: RelaxConfig | None = None,
    references: ElementalReferences | None = None,
    *,
    potential: Potential | None = None,
) -> RelaxationResult:
    """Relax one structure; failures are reported in the result, never raised."""
    config = config or RelaxConfig()
    potential = potential or get_potential(config.potential)
    start = time.monotonic()
    n_sites = len(structure)
    try:
        formula = structure.composition.reduced_formula
    except Exception:  # e.g. empty structure
        formula = ""
    fields: dict[str, Any] = {
        "formula": formula,
        "n_sites": n_sites,
        "potential": potential.name,
        "potential_version": potential.version,
        "fmax": config.fmax,
        "max_steps": config.max_steps,
    }

    def failed(reason: str, **extra: Any) -> RelaxationResult:
        return RelaxationResult(
            status="failed", reason=_one_line(reason), elapsed_s=time.monotonic() - start, **fields, **extra
        )

    if n_sites == 0:
        return failed("empty structure")
    if not structure.is_ordered:
        disordered = sorted({str(site.species) for site in structure if not site.is_ordered})
        return failed(f"partial occupancy / disordered sites not supported: {', '.join(disordered)}")
    try:
        clean = _clean_structure(structure)
    except Exception as exc:
        return failed(f"unsupported species: {type(exc).__name__}: {exc}")
    try:
        closest = _closest_pair(clean, config.min_distance)
    except Exception as exc:
        return failed(f"cannot compute distances: {type(exc).__name__}: {exc}")
    if closest is not None:
        return failed(f"atoms too close: {closest:.3f} Å < min_distance {config.min_distance} Å")

    partial: dict[str, Any] = {}  # whatever is known when a failure stops the relaxation
    try:
        with warnings.catch_warnings():
            # chgnet 0.4 warns on every evaluation about a tensor->scalar conversion it does internally
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
            converged, relaxed = _optimize(clean, config, potential, start, partial)
    except _Abort as exc:
        return failed(str(exc), **partial)
    except Exception as exc:
        return failed(f"relaxation error: {type(exc).__name__}: {exc}", **partial)

    if converged:
        reason = ""
    elif config.max_steps == 0:
        reason = f"single point (max_steps=0): forces or stress above fmax {config.fmax} eV/Å"
    else:
        reason = f"not converged within {config.max_steps} steps (fmax {config.fmax} eV/Å)"
    formation = None
    if references is not None:
        try:
            formation = references.formation_energy_per_atom(clean.composition, partial["energy_total"])
        except Exception as exc:  # a missing reference must not lose the relaxation
            reason = "; ".join(filter(None, [reason, f"no formation energy: {type(exc).__name__}: {exc}"]))
    return RelaxationResult(
        status="converged" if converged else "unconverged",
        reason=_one_line(reason),
        formation_energy_per_atom=formation,
        relaxed_structure=relaxed.as_dict(),
        elapsed_s=time.monotonic() - start,
        **fields,
        **partial,
    )


def relax_many(
    structures: Sequence[Structure],
    config: RelaxConfig | None = None,
    references: ElementalReferences | None = None,
) -> list[RelaxationResult]:
    """Relax structures one after another; one failure never stops the others."""
    config = config or RelaxConfig()
    potential = get_potential(config.potential)  # a bad spec is a ConfigError, raised once up front
    results = []
    for structure in structures:
        try:
            results.append(relax_structure(structure, config, references, potential=potential))
        except Exception as exc:  # defensive: relax_structure should already catch everything
            results.append(
                RelaxationResult(
                    status="failed",
                    reason=_one_line(f"unexpected error: {type(exc).__name__}: {exc}"),
                    formula=getattr(getattr(structure, "composition", None), "reduced_formula", ""),
                    n_sites=len(structure),
                    potential=potential.name,
                    potential_version=potential.version,
                    elapsed_s=0.0,
                    fmax=config.fmax,
                    max_steps=config.max_steps,
                )
            )
    return results
