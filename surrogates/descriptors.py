"""Composition and structure descriptors for descriptor-based property models (band gaps, conductivities).

``describe(items)`` gives ``(n, D)`` float64 rows for structures, compositions or formulas (NaN for the
structure columns of a bare composition; the tree models handle NaN). ``DESCRIPTOR_NAMES`` names the columns.

- Composition (``19`` elemental properties x 5 statistics): for Z, Pauling electronegativity, atomic radius (Å),
  row, group, atomic mass (amu), Mendeleev number, first ionisation energy (eV), electron affinity (eV), melting
  point (K), s/p/d/f valence electrons and unfilled s/p/d/f states, metal and nonmetal flags: the
  atomic-fraction-weighted mean, weighted mean absolute deviation, min, max and range over the elements present.
- Composition, global: number of elements, largest and smallest fraction, Li and Na fractions, average ionic
  character ``sum_ij x_i x_j (1 - exp(-(X_i - X_j)^2 / 4))``, the fraction of metal atoms.
- Oxidation states (pymatgen's most likely charge-balanced guess, cached per formula; NaN when none): charge
  balanced, fractional states, mean and max cation state, mean anion state, anion minus cation
  electronegativity, d electrons left on transition-metal cations (mean, max, fraction partly filled), anion
  fraction.
- Structure: volume per atom (Å^3), density (g/cm^3), packing fraction (atomic spheres / volume), sites,
  lattice-length ratio (max / min); per site, in its first shell (neighbours within 1.2 x the nearest
  distance): coordination number, nearest distance / (sum of the two atomic radii), mean |ΔX| to the
  neighbours (local ionicity), fraction of same-element neighbours, fraction of metal neighbours of a metal
  site; each as mean, std, min and max over sites; and the shortest metal-metal distance over the sum of
  radii (within 6 Å).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import cache

import numpy as np
from pymatgen.core import Composition, Element, Structure

__all__ = ["DESCRIPTOR_NAMES", "describe", "element_table"]

_SCALARS = (
    "Z",
    "X",
    "atomic_radius",
    "row",
    "group",
    "atomic_mass",
    "mendeleev_no",
    "ionization_energy",
    "electron_affinity",
    "melting_point",
)
_ORBITALS = ("s", "p", "d", "f")
_CAPACITY = {"s": 2, "p": 6, "d": 10, "f": 14}
ELEMENT_PROPERTIES: tuple[str, ...] = (
    *_SCALARS,
    *(f"n{o}_valence" for o in _ORBITALS),
    *(f"n{o}_unfilled" for o in _ORBITALS),
    "is_metal",
    "is_nonmetal",
)
_STATS = ("mean", "mad", "min", "max", "range")
_OXIDATION = (
    "charge_balanced",
    "fractional_oxidation",
    "cation_oxi_mean",
    "cation_oxi_max",
    "anion_oxi_mean",
    "anion_cation_dx",
    "tm_d_mean",
    "tm_d_max",
    "tm_d_partial",
    "anion_fraction",
)
_SITE = ("cn", "bond_ratio", "local_dx", "same_element", "metal_metal")
DESCRIPTOR_NAMES: tuple[str, ...] = (
    *(f"{p}_{s}" for p in ELEMENT_PROPERTIES for s in _STATS),
    "n_elements",
    "max_fraction",
    "min_fraction",
    "li_fraction",
    "na_fraction",
    "ionic_character",
    "metal_fraction",
    *_OXIDATION,
    "volume_per_atom",
    "density",
    "packing_fraction",
    "n_sites",
    "lattice_ratio",
    *(f"site_{p}_{s}" for p in _SITE for s in ("mean", "std", "min", "max")),
    "metal_metal_ratio",
)
SHELL = 1.2
"""First shell: neighbours within this factor of a site's nearest-neighbour distance."""
CUTOFF = 6.0
"""Neighbour search radius (Å)."""


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return np.nan


def _valence(el: Element) -> tuple[list[float], list[float]]:
    """s/p/d/f valence electrons (outermost s and p, (n-1)d, (n-2)f) and unfilled states of those shells."""
    try:
        shells = el.full_electronic_structure
    except Exception:
        return [np.nan] * 4, [np.nan] * 4
    n_max = max(n for n, _, _ in shells)
    occ = {"s": 0.0, "p": 0.0, "d": 0.0, "f": 0.0}
    for n, orbital, electrons in shells:
        if (
            (orbital in "sp" and n == n_max)
            or (orbital == "d" and n == n_max - 1)
            or (orbital == "f" and n == n_max - 2)
        ):
            occ[orbital] += float(electrons)
    unfilled = [(_CAPACITY[o] - occ[o]) if occ[o] > 0 else 0.0 for o in _ORBITALS]
    return [occ[o] for o in _ORBITALS], unfilled


@cache
def element_table(symbol: str) -> np.ndarray:
    """``(len(ELEMENT_PROPERTIES),)`` float64 properties of one element (NaN where pymatgen has none)."""
    el = Element(symbol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = [_number(getattr(el, name, None)) for name in _SCALARS]
        valence, unfilled = _valence(el)
        metal = float(bool(el.is_metal))
        nonmetal = float(not (el.is_metal or el.is_metalloid or el.is_noble_gas))
    return np.asarray([*values, *valence, *unfilled, metal, nonmetal], dtype=np.float64)


@cache
def _radius(symbol: str) -> float:
    el = Element(symbol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("atomic_radius", "atomic_radius_calculated", "van_der_waals_radius"):
            r = _number(getattr(el, name, None))
            if np.isfinite(r) and r > 0:
                return r
    return 1.5


def _composition_part(comp: Composition) -> np.ndarray:
    fractions = comp.fractional_composition.get_el_amt_dict()
    symbols = list(fractions)
    w = np.asarray([fractions[s] for s in symbols], dtype=np.float64)  # (m,) sums to 1
    props = np.stack([element_table(s) for s in symbols])  # (m, P)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        valid = np.isfinite(props)
        wv = np.where(valid, w[:, None], 0.0)
        norm = wv.sum(axis=0)
        mean = np.where(norm > 0, np.nansum(wv * np.nan_to_num(props), axis=0) / np.where(norm > 0, norm, 1), np.nan)
        mad = np.where(
            norm > 0, np.nansum(wv * np.abs(np.nan_to_num(props) - mean), axis=0) / np.where(norm > 0, norm, 1), np.nan
        )
        lo, hi = np.nanmin(props, axis=0), np.nanmax(props, axis=0)
    stats = np.stack([mean, mad, lo, hi, hi - lo], axis=1).reshape(-1)
    x = props[:, _SCALARS.index("X")]
    dx = np.nan_to_num(x[:, None] - x[None, :])
    ionic = float(np.sum(w[:, None] * w[None, :] * (1.0 - np.exp(-(dx**2) / 4.0))))
    metal = float(np.sum(w * props[:, ELEMENT_PROPERTIES.index("is_metal")]))
    extra = [len(symbols), w.max(), w.min(), fractions.get("Li", 0.0), fractions.get("Na", 0.0), ionic, metal]
    return np.concatenate([stats, extra, _oxidation_part(comp.reduced_formula)])


MAX_OXIDATION_ATOMS = 30
"""Oxidation states are guessed only for reduced formulas up to this many atoms (NaN features above)."""


@cache
def _oxidation_part(formula: str) -> np.ndarray:
    """Features of pymatgen's most likely oxidation states (``oxi_state_guesses``); NaN (and 0 for the
    balance flag) when none balances, all NaN for fractional formulas and above ``MAX_OXIDATION_ATOMS``.

    Charge balanced (1/0), fractional states present, mean and max cation state, mean anion state, mean anion
    minus mean cation electronegativity, d electrons left on transition-metal cations (mean, max over
    them, fraction of them with a partly filled d shell), fraction of anion atoms.
    """
    comp = Composition(formula)
    out = np.full(len(_OXIDATION), np.nan)
    amounts = list(comp.get_el_amt_dict().values())
    if comp.num_atoms > MAX_OXIDATION_ATOMS or any(abs(a - round(a)) > 1e-6 for a in amounts):
        return out  # pymatgen's enumeration explodes on large formulas; fractional (doped) ones it refuses
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            guesses = comp.oxi_state_guesses(max_sites=-1)
    except Exception:
        guesses = ()
    out[0] = float(bool(guesses))
    if not guesses:
        return out
    oxi = guesses[0]
    fractions = comp.fractional_composition.get_el_amt_dict()
    symbols = list(fractions)
    w = np.asarray([fractions[e] for e in symbols])
    q = np.asarray([float(oxi.get(e, 0.0)) for e in symbols])
    x = np.asarray([element_table(e)[_SCALARS.index("X")] for e in symbols])
    cat, an = q > 0, q < 0
    out[1] = float(np.any(np.abs(q - np.round(q)) > 1e-6))
    if cat.any():
        out[2] = float(np.sum(w[cat] * q[cat]) / w[cat].sum())
        out[3] = float(q[cat].max())
    if an.any():
        out[4] = float(np.sum(w[an] * q[an]) / w[an].sum())
    if cat.any() and an.any():
        out[5] = float(np.nanmean(x[an]) - np.nanmean(x[cat]))
    tm = np.asarray([Element(e).is_transition_metal for e in symbols]) & cat
    if tm.any():
        table = np.stack([element_table(e) for e in np.asarray(symbols)[tm]])
        s_idx, d_idx = ELEMENT_PROPERTIES.index("ns_valence"), ELEMENT_PROPERTIES.index("nd_valence")
        d = np.clip(table[:, s_idx] + table[:, d_idx] - q[tm], 0.0, 10.0)
        out[6] = float(np.sum(w[tm] * d) / w[tm].sum())
        out[7] = float(d.max())
        out[8] = float(np.sum(w[tm] * ((d > 0.01) & (d < 9.99))) / w[tm].sum())
    else:
        out[6:9] = 0.0
    out[9] = float(w[an].sum())
    return out


def _structure_part(structure: Structure) -> np.ndarray:
    n = len(structure)
    # the majority species of a partly occupied site stands for it (composition features use the full occupancy)
    symbols = [max(site.species.items(), key=lambda kv: kv[1])[0].symbol for site in structure]
    radii = np.asarray([_radius(s) for s in symbols])
    x = np.asarray([element_table(s)[_SCALARS.index("X")] for s in symbols])
    metal = np.asarray([element_table(s)[ELEMENT_PROPERTIES.index("is_metal")] for s in symbols]) > 0
    volume = structure.volume
    lengths = np.asarray(structure.lattice.abc)
    glob = [
        volume / n,
        float(structure.density),
        float(np.sum(4.0 / 3.0 * np.pi * radii**3) / volume),
        n,
        float(lengths.max() / lengths.min()),
    ]
    centers, points, _, dist = structure.get_neighbor_list(CUTOFF)
    site = np.full((n, len(_SITE)), np.nan)
    mm = np.nan
    if len(centers):
        keep = dist > 1e-8
        centers, points, dist = centers[keep], points[keep], dist[keep]
        dmin = np.full(n, np.inf)
        np.minimum.at(dmin, centers, dist)
        shell = dist <= SHELL * dmin[centers]
        c, p, d = centers[shell], points[shell], dist[shell]
        cn = np.bincount(c, minlength=n).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            site[:, 0] = cn
            nearest = np.full(n, np.inf)
            np.minimum.at(nearest, c, d / (radii[c] + radii[p]))
            site[:, 1] = np.where(np.isfinite(nearest), nearest, np.nan)
            site[:, 2] = np.bincount(c, weights=np.nan_to_num(np.abs(x[c] - x[p])), minlength=n) / cn
            site[:, 3] = np.bincount(c, weights=(np.asarray(symbols)[c] == np.asarray(symbols)[p]), minlength=n) / cn
            mm_frac = np.bincount(c, weights=(metal[c] & metal[p]).astype(float), minlength=n) / cn
            site[:, 4] = np.where(metal, mm_frac, np.nan)
        both = metal[centers] & metal[points]
        if both.any():
            mm = float(np.min(dist[both] / (radii[centers[both]] + radii[points[both]])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stats = np.stack([np.nanmean(site, 0), np.nanstd(site, 0), np.nanmin(site, 0), np.nanmax(site, 0)], axis=1)
    return np.concatenate([glob, stats.reshape(-1), [mm]])


_N_STRUCTURE = 5 + 4 * len(_SITE) + 1


def describe(items: Sequence[Structure | Composition | str]) -> np.ndarray:
    """Descriptors ``(n, len(DESCRIPTOR_NAMES))`` float64 of structures, compositions or formulas."""
    rows = []
    for item in items:
        if isinstance(item, Structure):
            rows.append(np.concatenate([_composition_part(item.composition), _structure_part(item)]))
        else:
            rows.append(np.concatenate([_composition_part(Composition(item)), np.full(_N_STRUCTURE, np.nan)]))
    if not rows:
        return np.zeros((0, len(DESCRIPTOR_NAMES)))
    out = np.asarray(rows, dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out
