"""Short molecular dynamics with the oracle's potential: Li/Na diffusivity and a conductivity estimate.

For the top candidates of a round only (it costs minutes per structure on a CPU). The structure is
repeated to a supercell of at least ``min_length`` Å per side, thermalised with Langevin dynamics at
``temperature_K``, and the mobile ion's mean squared displacement after equilibration is fitted with
``MSD(t) = 6 D t``. The Nernst-Einstein conductivity ``sigma = n q^2 D / (k_B T)`` assumes uncorrelated
ions of charge +1.

Caveat (stored with every result): a few picoseconds at one (usually elevated) temperature give a
rough, noisy D - one run with few hops can be off by an order of magnitude, and it says nothing about
room temperature without an Arrhenius fit over several temperatures. Use it to rank, not to report.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from oracle.potentials import Potential

#: stored with every result
CAVEAT = (
    "Single short MD run at one temperature: D is noisy (few hops) and not extrapolated to room temperature; "
    "Nernst-Einstein assumes uncorrelated +1 ions. Use to rank candidates, not as a measured conductivity."
)
_ELEMENTARY_CHARGE = 1.602176634e-19  # C
_BOLTZMANN = 1.380649e-23  # J/K
_A2_PER_FS_TO_CM2_PER_S = 0.1  # 1 Å²/fs = 1e-16 cm² / 1e-15 s


class MDConfig(BaseModel):
    """Knobs of the optional diffusion run for the top candidates of each round."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(False, description="Run MD for the top candidates of each round.")
    top_k: int = Field(2, ge=1, le=100, description="Candidates per round: the lowest energy above hull.")
    ion: Literal["auto", "Li", "Na"] = Field("auto", description="Mobile ion; 'auto': Li if present, else Na.")
    temperature_K: float = Field(1000.0, gt=0, le=5000, description="Thermostat temperature (K).")
    timestep_fs: float = Field(2.0, gt=0, le=5, description="Integration time step (fs).")
    steps: int = Field(2000, ge=10, description="Production steps after equilibration.")
    equilibration_steps: int = Field(500, ge=0, description="Steps discarded before the MSD is measured.")
    friction: float = Field(0.01, gt=0, description="Langevin friction (1/fs).")
    min_length: float = Field(8.0, ge=0, description="Supercell: repeat the cell until every side is this long (Å).")
    sample_every: int = Field(10, ge=1, description="Record positions every this many steps.")
    seed: int = Field(0, ge=0, description="Seed of the initial velocities and the Langevin noise.")


class DiffusionResult(BaseModel):
    """Diffusivity and Nernst-Einstein conductivity of the mobile ion from one MD run."""

    status: Literal["ok", "failed"] = Field(description="'failed' when the run broke (see reason).")
    reason: str = Field("", description="Why it failed.")
    ion: str = Field(description="Mobile ion species.")
    n_atoms: int = Field(description="Atoms in the simulated supercell.")
    n_ions: int = Field(description="Mobile ions in the supercell.")
    volume_A3: float = Field(description="Supercell volume (Å³).")
    diffusivity_cm2_s: float | None = Field(None, description="Tracer diffusivity of the ion, MSD slope / 6 (cm²/s).")
    conductivity_S_cm: float | None = Field(None, description="Nernst-Einstein conductivity at temperature_K (S/cm).")
    log10_conductivity: float | None = Field(None, description="log10 of conductivity_S_cm (S/cm); None if <= 0.")
    msd_final_A2: float | None = Field(None, description="Mean squared displacement at the end of the run (Å²).")
    mean_temperature_K: float | None = Field(None, description="Mean kinetic temperature in production (K).")
    temperature_K: float = Field(description="Thermostat temperature (K).")
    timestep_fs: float = Field(description="Time step (fs).")
    steps: int = Field(description="Production steps.")
    equilibration_steps: int = Field(description="Equilibration steps.")
    potential: str = Field(description="Potential spec.")
    potential_version: str = Field(description="Potential package and model version.")
    caveat: str = Field(CAVEAT, description="What the number can and cannot say.")
    elapsed_s: float = Field(description="Wall time (s).")


def supercell_repeats(lattice_lengths: tuple[float, float, float], min_length: float) -> tuple[int, int, int]:
    """Repeats per axis so that every side is at least ``min_length`` Å."""
    return tuple(max(1, math.ceil(min_length / length)) for length in lattice_lengths)  # type: ignore[return-value]


def nernst_einstein(diffusivity_cm2_s: float, n_ions: int, volume_A3: float, temperature_K: float) -> float:
    """sigma = n e^2 D / (k_B T) in S/cm for ``n_ions`` +1 ions in ``volume_A3`` Å³."""
    n_per_cm3 = n_ions / (volume_A3 * 1e-24)
    return n_per_cm3 * _ELEMENTARY_CHARGE**2 * diffusivity_cm2_s / (_BOLTZMANN * temperature_K)


def pick_ion(structure: Structure, ion: str) -> str | None:
    """The mobile ion of ``structure``: the configured one, or Li before Na; None when absent."""
    symbols = {el.symbol for el in structure.composition.elements}
    if ion != "auto":
        return ion if ion in symbols else None
    return next((s for s in ("Li", "Na") if s in symbols), None)


def run_md(structure: Structure, config: MDConfig, potential: Potential) -> DiffusionResult:
    """One Langevin run; failures (no mobile ion, NaN, a crash) come back as ``status='failed'``."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    start = time.monotonic()
    ion = pick_ion(structure, config.ion) or (config.ion if config.ion != "auto" else "Li/Na")
    repeats = supercell_repeats(tuple(structure.lattice.abc), config.min_length)
    atoms = AseAtomsAdaptor.get_atoms(Structure(structure.lattice, structure.species, structure.frac_coords))
    atoms = atoms.repeat(repeats)
    mobile = np.array([s == ion for s in atoms.get_chemical_symbols()])
    base = {
        "ion": ion,
        "n_atoms": len(atoms),
        "n_ions": int(mobile.sum()),
        "volume_A3": float(atoms.get_volume()),
        "temperature_K": config.temperature_K,
        "timestep_fs": config.timestep_fs,
        "steps": config.steps,
        "equilibration_steps": config.equilibration_steps,
        "potential": potential.name,
        "potential_version": potential.version,
    }
    if not mobile.any():
        return DiffusionResult(status="failed", reason="no Li or Na to follow", elapsed_s=0.0, **base)
    atoms.calc = potential.calculator()
    rng = np.random.default_rng(config.seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=config.temperature_K, rng=rng)
    Stationary(atoms)
    dyn = Langevin(
        atoms,
        timestep=config.timestep_fs * units.fs,
        temperature_K=config.temperature_K,
        friction=config.friction / units.fs,
        fixcm=False,
        rng=rng,
    )
    samples: list[np.ndarray] = []
    temperatures: list[float] = []
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
            if config.equilibration_steps:
                dyn.run(config.equilibration_steps)
            for done in range(0, config.steps + 1, config.sample_every):
                if done:
                    dyn.run(config.sample_every)
                positions = atoms.get_positions(wrap=False)
                if not np.all(np.isfinite(positions)):
                    raise FloatingPointError("non-finite positions")
                # displacements relative to the centre of mass: the thermostat lets the whole cell drift
                samples.append(positions[mobile] - atoms.get_center_of_mass())
                temperatures.append(float(atoms.get_temperature()))
    except Exception as exc:
        return DiffusionResult(
            status="failed", reason=f"MD error: {type(exc).__name__}: {exc}", elapsed_s=time.monotonic() - start, **base
        )
    track = np.stack(samples)  # (T, n_ions, 3), unwrapped (ASE keeps positions continuous)
    msd = ((track - track[0]) ** 2).sum(axis=2).mean(axis=1)  # (T,) Å²
    times = np.arange(len(msd)) * config.sample_every * config.timestep_fs  # fs
    half = len(msd) // 2  # fit the second half: past the ballistic and cage regime
    if len(msd) - half < 2:
        reason = f"too few samples to fit the MSD ({len(msd)}): raise steps or lower sample_every"
        return DiffusionResult(status="failed", reason=reason, elapsed_s=time.monotonic() - start, **base)
    slope = float(np.polyfit(times[half:], msd[half:], 1)[0])
    d = max(slope, 0.0) / 6.0 * _A2_PER_FS_TO_CM2_PER_S
    sigma = nernst_einstein(d, base["n_ions"], base["volume_A3"], config.temperature_K)
    return DiffusionResult(
        status="ok",
        diffusivity_cm2_s=d,
        conductivity_S_cm=sigma,
        log10_conductivity=math.log10(sigma) if sigma > 0 else None,
        msd_final_A2=float(msd[-1]),
        mean_temperature_K=float(np.mean(temperatures)),
        elapsed_s=time.monotonic() - start,
        **base,
    )
