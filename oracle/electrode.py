"""Intercalation electrodes: working ion, removable ions, the charged structure and the average voltage.

Pure functions of values. The voltage comes from two total energies on one scale (MP's corrected GGA/GGA+U
scale, the one CHGNet learned) and the working ion's metal reference energy (MP elemental reference, eV/atom),
through pymatgen's :class:`~pymatgen.apps.battery.insertion_battery.InsertionElectrode`, which also gives the
gravimetric capacity and specific energy. pymatgen normalises both to the mass of the *discharged* (ion-rich)
state: removing one Li from LiFePO4 gives 26.8 Ah/mol / 157.76 g/mol = 169.9 mAh/g.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pymatgen.analysis.phase_diagram import PDEntry
from pymatgen.apps.battery.insertion_battery import InsertionElectrode, InsertionVoltagePair
from pymatgen.core import Composition, Structure
from pymatgen.core.entries import ComputedEntry

if TYPE_CHECKING:
    from oracle.relax import RelaxationResult

__all__ = [
    "ION_SYMBOLS",
    "REDOX_CEILING",
    "ElectrodeResult",
    "Removal",
    "deintercalate",
    "removable_ions",
    "spread_subset",
    "working_ion",
]

#: Working ions this module knows (charge +1).
ION_SYMBOLS = ("Li", "Na")

#: Highest oxidation state a cation reaches on charging an intercalation electrode (pymatgen's redox-active
#: intercalation elements, ``is_redox_active_intercalation``, with practical ceilings instead of the formal
#: maxima pymatgen's ``BatteryAnalyzer`` uses: Mn4+ as in lambda-MnO2, not Mn7+; Fe3+ as in FePO4, not Fe6+;
#: Co4+/Ni4+ as in CoO2/NiO2; V5+ as in V2O5). Anion (O, S) redox is not counted.
REDOX_CEILING: dict[str, int] = {
    "Ti": 4,
    "V": 5,
    "Cr": 6,
    "Mn": 4,
    "Fe": 3,
    "Co": 4,
    "Ni": 4,
    "Cu": 3,
    "Nb": 5,
    "Mo": 6,
    "W": 6,
    "Sn": 4,
    "Sb": 5,
    "Bi": 5,
}

_TOL = 1e-6


def _plain(composition: Composition | str) -> Composition:
    """The composition by element (oxidation states dropped)."""
    return Composition(composition).element_composition


def working_ion(composition: Composition | str, ion: str | None = None) -> str:
    """The working ion of a compound: the one of Li and Na it holds.

    Raises ValueError when it holds neither, or when it holds both and ``ion`` does not say which
    (a mixed Li/Na compound has no single working ion: pass ``ion='Li'`` or ``ion='Na'``).
    """
    comp = _plain(composition)
    present = [s for s in ION_SYMBOLS if comp[s] > 0]
    if ion is not None:
        if ion not in ION_SYMBOLS:
            raise ValueError(f"unknown working ion {ion!r}; known: {', '.join(ION_SYMBOLS)}")
        if ion not in present:
            raise ValueError(f"{comp.reduced_formula} holds no {ion}")
        return ion
    if not present:
        raise ValueError(f"{comp.reduced_formula} holds neither Li nor Na: no working ion")
    if len(present) > 1:
        raise ValueError(f"{comp.reduced_formula} holds both Li and Na: pass ion='Li' or ion='Na'")
    return present[0]


@dataclass(frozen=True, kw_only=True)
class Removal:
    """How many working ions can leave a compound, limited by the redox capacity of its other cations."""

    ion: str
    """Working ion symbol."""
    n_ion: float
    """Working ions in the composition given (atoms)."""
    n_removable: float
    """Ions that can be removed keeping charge balance: min(n_ion, redox capacity) (atoms, same basis)."""
    redox_capacity: float
    """Electrons the other cations can give up before reaching their ceiling (e-, same basis)."""
    oxidation_states: dict[str, float] = field(default_factory=dict)
    """The oxidation-state guess used (element -> average state); empty when none was found."""
    reason: str = ""
    """Why no ion can be removed ('' when some can)."""


def removable_ions(
    composition: Composition | str,
    ion: str | None = None,
    *,
    ceilings: Mapping[str, int] = REDOX_CEILING,
) -> Removal:
    """Ions removable from ``composition`` (its own basis: a cell's composition gives per-cell counts).

    Uses the most probable charge-balanced oxidation-state guess (pymatgen ``oxi_state_guesses``, ICSD
    statistics); each cation in ``ceilings`` can be oxidised up to its ceiling; every other element is
    redox-inactive. Li2O, LiF, Li3PS4: no redox-active cation, nothing removable (anion redox not counted).
    """
    comp = _plain(composition)
    ion = working_ion(comp, ion)
    n_ion = float(comp[ion])
    reduced, factor = comp.get_reduced_composition_and_factor()
    guesses = reduced.oxi_state_guesses()
    if not guesses:
        return Removal(
            ion=ion,
            n_ion=n_ion,
            n_removable=0.0,
            redox_capacity=0.0,
            reason=f"no charge-balanced oxidation-state guess for {comp.reduced_formula}",
        )
    states = {str(el): float(v) for el, v in guesses[0].items()}
    if abs(states.get(ion, 0.0) - 1.0) > _TOL:
        return Removal(
            ion=ion,
            n_ion=n_ion,
            n_removable=0.0,
            redox_capacity=0.0,
            oxidation_states=states,
            reason=f"{ion} is not {ion}+ in the oxidation-state guess of {comp.reduced_formula} ({states})",
        )
    capacity = 0.0
    at_ceiling = []
    for el, state in states.items():
        if el == ion or el not in ceilings or state <= 0:
            continue
        room = ceilings[el] - state
        if room > _TOL:
            capacity += room * float(reduced[el]) * factor
        else:
            at_ceiling.append(f"{el}{state:+g} (ceiling {ceilings[el]:+d})")
    removable = min(n_ion, capacity)
    reason = ""
    if removable <= _TOL:
        guess = ", ".join(f"{el}{v:+g}" for el, v in states.items())
        if at_ceiling:
            reason = f"no oxidisable cation in {comp.reduced_formula}: {', '.join(at_ceiling)} already at its ceiling"
        else:
            reason = f"no redox-active cation in {comp.reduced_formula} ({guess}): nothing can be oxidised"
        removable = 0.0
    return Removal(
        ion=ion,
        n_ion=n_ion,
        n_removable=float(removable),
        redox_capacity=float(capacity),
        oxidation_states=states,
        reason=reason,
    )


def spread_subset(structure: Structure, indices: list[int], n: int) -> list[int]:
    """``n`` of the sites ``indices``, well spread: greedy farthest-point sampling under periodic distances.

    Starts from the lowest index; each next pick is the site farthest (minimum-image distance) from those
    already picked, ties going to the lowest index. Deterministic for a given structure.
    """
    if not 0 <= n <= len(indices):
        raise ValueError(f"cannot pick {n} of {len(indices)} sites")
    if n == 0:
        return []
    order = sorted(indices)
    frac = np.array([structure[i].frac_coords for i in order])
    dist = structure.lattice.get_all_distances(frac, frac)
    chosen = [0]
    nearest = dist[0].copy()
    while len(chosen) < n:
        nearest[chosen] = -1.0
        best = float(nearest.max())
        pick = int(np.flatnonzero(nearest >= best - 1e-6)[0])
        chosen.append(pick)
        nearest = np.minimum(nearest, dist[pick])
    return sorted(order[k] for k in chosen)


def deintercalate(structure: Structure, ion: str | None = None, n_remove: int | None = None) -> Structure:
    """The charged counterpart of ``structure``: ``n_remove`` working ions taken out, all else unchanged (Å).

    ``n_remove=None`` removes as many as the redox capacity allows (:func:`removable_ions`, rounded down to
    whole ions in this cell): all of them when it allows, otherwise a well-spread subset
    (:func:`spread_subset`). Raises ValueError when none can be removed (with the reason), when ``n_remove``
    exceeds the ions present or the redox capacity, or for a disordered structure.
    """
    if not structure.is_ordered:
        raise ValueError("deintercalate needs an ordered structure (no partial occupancies)")
    removal = removable_ions(structure.composition, ion)
    limit = math.floor(removal.n_removable + _TOL)
    if n_remove is None:
        if limit == 0:
            raise ValueError(removal.reason or f"less than one {removal.ion} per cell can be removed")
        n_remove = limit
    if not 1 <= n_remove <= round(removal.n_ion):
        raise ValueError(f"n_remove={n_remove}: the cell holds {removal.n_ion:g} {removal.ion}")
    if n_remove > limit:
        raise ValueError(
            f"n_remove={n_remove} exceeds the redox capacity ({removal.n_removable:g} {removal.ion} per cell)"
            + (f": {removal.reason}" if removal.reason else "")
        )
    sites = [i for i, site in enumerate(structure) if site.specie.symbol == removal.ion]
    removed = spread_subset(structure, sites, n_remove)
    charged = structure.copy()
    charged.remove_sites(removed)
    return charged


class ElectrodeResult(BaseModel):
    """One insertion step, discharged -> charged, from two total energies on one scale."""

    model_config = ConfigDict(frozen=True)

    ion: str = Field(description="Working ion (Li or Na).")
    discharged_formula: str = Field(description="Reduced formula of the discharged (ion-rich) state.")
    charged_formula: str = Field(description="Reduced formula of the charged (ion-poor) state.")
    framework_formula: str = Field(description="Host framework formula: the normalisation basis of pymatgen.")
    n_removed: float = Field(description="Ions transferred per framework formula unit.")
    average_voltage: float = Field(description="Average voltage vs the ion's metal (V).")
    capacity_mAh_g: float = Field(description="Gravimetric capacity per mass of the discharged state (mAh/g).")
    energy_density_Wh_kg: float = Field(
        description="Specific energy, capacity x voltage, per mass of the discharged state (Wh/kg)."
    )
    energy_density_Wh_L: float | None = Field(
        None, description="Volumetric energy per volume of the discharged state (Wh/L); None without volumes."
    )
    volume_change: float | None = Field(
        None,
        description="V_charged / V_discharged - 1 per framework formula unit (fraction; negative: shrinks on "
        "charging); None without volumes.",
    )
    ion_energy_per_atom: float = Field(description="Metal reference energy of the ion used (eV/atom).")

    @classmethod
    def from_energies(
        cls,
        discharged: Composition | str,
        discharged_energy: float,
        charged: Composition | str,
        charged_energy: float,
        ion_energy_per_atom: float,
        *,
        ion: str | None = None,
        discharged_volume: float | None = None,
        charged_volume: float | None = None,
    ) -> ElectrodeResult:
        """Average voltage, capacity and energy density of discharged -> charged.

        Args:
            discharged, charged: compositions (any basis, e.g. the two cells).
            discharged_energy, charged_energy: total energies of those compositions (eV, one scale).
            ion_energy_per_atom: the ion's metal reference on the same scale (eV/atom).
            discharged_volume, charged_volume: volumes of those compositions (Å^3), optional.
        """
        d_comp, c_comp = _plain(discharged), _plain(charged)
        ion = working_ion(d_comp, ion)
        if c_comp.get_atomic_fraction(ion) >= d_comp.get_atomic_fraction(ion):
            raise ValueError(f"{c_comp.reduced_formula} is not ion-poorer than {d_comp.reduced_formula}")
        entries = []
        for comp, energy, volume in (
            (c_comp, charged_energy, charged_volume),
            (d_comp, discharged_energy, discharged_volume),
        ):
            if not math.isfinite(energy):
                raise ValueError(f"non-finite energy for {comp.reduced_formula}")
            entry = ComputedEntry(comp, float(energy), entry_id=comp.reduced_formula)
            if volume is not None:
                frame = Composition({el: amt for el, amt in comp.items() if el.symbol != ion})
                entry.data["volume"] = float(volume) / frame.get_reduced_composition_and_factor()[1]
            entries.append(entry)
        has_volume = discharged_volume is not None and charged_volume is not None
        if not has_volume:
            for entry in entries:
                entry.data["volume"] = 0.0
        ion_entry = PDEntry(Composition(ion), float(ion_energy_per_atom), name=f"{ion} metal")
        pair = InsertionVoltagePair.from_entries(entries[0], entries[1], ion_entry)  # checks the frameworks match
        electrode = InsertionElectrode(
            voltage_pairs=(pair,),
            working_ion_entry=ion_entry,
            framework_formula=pair.framework_formula,
            stable_entries=tuple(entries),
            unstable_entries=(),
        )
        return cls(
            ion=ion,
            discharged_formula=d_comp.reduced_formula,
            charged_formula=c_comp.reduced_formula,
            framework_formula=electrode.framework_formula,
            n_removed=float(pair.x_discharge - pair.x_charge),
            average_voltage=float(electrode.get_average_voltage()),
            capacity_mAh_g=float(electrode.get_capacity_grav()),
            energy_density_Wh_kg=float(electrode.get_specific_energy()),
            energy_density_Wh_L=float(electrode.get_energy_density()) if has_volume else None,
            volume_change=float(pair.vol_charge / pair.vol_discharge - 1.0) if has_volume else None,
            ion_energy_per_atom=float(ion_energy_per_atom),
        )

    @classmethod
    def from_relaxations(
        cls,
        discharged: RelaxationResult,
        charged: RelaxationResult,
        ion_energy_per_atom: float,
        *,
        ion: str | None = None,
    ) -> ElectrodeResult:
        """The same from two relaxation results (final total energies and relaxed volumes).

        Raises ValueError when either has no energy or relaxed structure (a failed relaxation).
        """
        cells = []
        for result in (discharged, charged):
            if result.energy_total is None or result.relaxed_structure is None:
                raise ValueError(f"no relaxed energy for {result.formula}: {result.status} {result.reason}".strip())
            cells.append(Structure.from_dict(result.relaxed_structure))
        return cls.from_energies(
            cells[0].composition,
            float(discharged.energy_total),  # type: ignore[arg-type]
            cells[1].composition,
            float(charged.energy_total),  # type: ignore[arg-type]
            ion_energy_per_atom,
            ion=ion,
            discharged_volume=cells[0].volume,
            charged_volume=cells[1].volume,
        )
