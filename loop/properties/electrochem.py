"""Electrochemical properties of every candidate, from its composition and the reference phases.

- ``stability_window_low_V`` / ``stability_window_high_V``: the window vs the working-ion metal (Zhu, He & Mo
  2015, :func:`oracle.window.stability_window`) with the candidate placed on the hull of the MP reference phases;
  a labelled structure reads the window at its own energy (``EvaluationDoc.window``).
- ``capacity_mAh_g``: theoretical gravimetric capacity of the ions its other cations' redox lets it give up
  (:func:`oracle.electrode.removable_ions`); a labelled one reads the electrode result where computed.
- ``energy_density_Wh_kg``: the learned average voltage times that capacity (needs ``average_voltage`` learned).

Each is exact for a composition (one sample), so acquisition can use them as constraints and objectives at no
cost. A candidate the property does not apply to (no Li or Na, no reduction-stable hull point, ...) gets the
least favourable value: a window of zero width at ``low 5 V / high 0 V``, a capacity of 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pymatgen.core import Composition

from loop.config import LoopConfig
from loop.properties.base import PropertyInputs
from loop.registry import PROPERTIES
from loop.roles import RoundContext
from oracle.config import OracleConfig
from store.documents import EvaluationDoc

#: Faraday constant over 3.6 (C/mol -> mAh/mol).
MAH_PER_MOL = 96485.33212 / 3.6

_CACHE: dict[tuple[str, str], float] = {}


def _ion(comp: Composition) -> str | None:
    return "Li" if comp["Li"] > 0 else "Na" if comp["Na"] > 0 else None


def theoretical_capacity(formula: str | Composition) -> float:
    """Gravimetric capacity (mAh/g) of the working ions removable from ``formula`` (0 when none)."""
    from oracle.electrode import removable_ions

    comp = Composition(formula).element_composition
    if _ion(comp) is None:
        return 0.0
    reduced = comp.reduced_composition
    try:
        n = removable_ions(reduced, _ion(reduced)).n_removable
    except ValueError:
        return 0.0
    return float(n * MAH_PER_MOL / reduced.weight)


@dataclass(frozen=True, kw_only=True)
class _Exact:
    """An outcome that is a function of the composition (and the reference phases): one sample."""

    name: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()
    worst: ClassVar[float] = 0.0
    reads: ClassVar[tuple[str, ...]] = ("oracle",)

    oracle: OracleConfig

    @classmethod
    def applies(cls, config: LoopConfig) -> bool:
        """Whether the oracle has MP reference phases (needed by the window; kept for all for one behaviour)."""
        from loop.properties.hull import HullProperty

        return HullProperty.applies(config)

    @classmethod
    def from_config(cls, config: LoopConfig) -> _Exact:
        """The property for ``config``'s oracle."""
        from core.errors import ConfigError

        if not cls.applies(config):
            raise ConfigError(f"property {cls.name!r} needs the MP reference phases (an MP-scale potential)")
        return cls(oracle=config.oracle)

    def describe(self) -> dict[str, Any]:
        """What it is computed from."""
        return {"from": "composition and MP reference phases", "worst": self.worst}

    def version(self, ctx: RoundContext) -> str:
        """Fixed per phase files."""
        return self.version_key()

    def prepare(self, ctx: RoundContext, *, on_stage: Any = None) -> None:
        """Nothing beyond the phases the hull reads."""

    def compute(self, formula: str) -> float:
        """The value for one reduced formula (NaN when it does not apply)."""
        raise NotImplementedError

    def value(self, formula: str) -> float:
        """:meth:`compute`, cached per process, with :attr:`worst` where it does not apply."""
        key = (self.version_key(), formula)
        if key not in _CACHE:
            try:
                v = float(self.compute(formula))
            except (ValueError, KeyError, ArithmeticError):
                v = math.nan
            _CACHE[key] = v if math.isfinite(v) else self.worst
        return _CACHE[key]

    def version_key(self) -> str:
        """The property and the phase files it reads."""
        return f"{self.name}:" + ",".join(self.oracle.reference_phases)

    def samples(self, ctx: RoundContext, inputs: PropertyInputs) -> np.ndarray:
        """``1 x n`` exact values."""
        return np.array([[self.value(c.reduced_formula) for c in inputs.compositions]])

    def labelled(self, e: EvaluationDoc) -> float | None:
        """The value a labelled structure carries (None: use the composition's)."""
        return None

    def observed(self, ctx: RoundContext, evaluations: list[EvaluationDoc]) -> np.ndarray:
        """Labelled values where computed, else the composition's."""
        out = []
        for e in evaluations:
            v = self.labelled(e)
            out.append(self.value(e.formula) if v is None else v)
        return np.array(out, dtype=float)


def _window(oracle: OracleConfig, formula: str) -> Any:
    from oracle.completion import reference_phase_set
    from oracle.window import stability_window

    comp = Composition(formula)
    ion = _ion(comp)
    if ion is None:
        raise ValueError("no working ion")
    key = (oracle.key(), tuple(oracle.reference_phases))
    phases = _FILE_PHASES.get(key)
    if phases is None:  # the reference files only: a prediction must not depend on what the cache holds by now
        phases = _FILE_PHASES[key] = reference_phase_set(oracle).restricted(())
    return stability_window(comp, None, phases.entries({*(el.symbol for el in comp.elements), ion}), ion=ion)


_FILE_PHASES: dict[tuple[str, tuple[str, ...]], Any] = {}


@PROPERTIES.register("stability_window_low_V")
class WindowLowProperty(_Exact):
    """Reduction limit of the electrochemical window (V vs the metal) with the candidate on the hull."""

    name: ClassVar[str] = "stability_window_low_V"
    unit: ClassVar[str] = "V"
    worst: ClassVar[float] = 5.0

    def compute(self, formula: str) -> float:
        """Low limit (V)."""
        return float(_window(self.oracle, formula).low_V)

    def labelled(self, e: EvaluationDoc) -> float | None:
        """The window at the structure's own energy."""
        w = e.window or {}
        return float(w["low_V"]) if w.get("status") == "ok" and w.get("low_V") is not None else None


@PROPERTIES.register("stability_window_high_V")
class WindowHighProperty(_Exact):
    """Oxidation limit of the electrochemical window (V vs the metal) with the candidate on the hull."""

    name: ClassVar[str] = "stability_window_high_V"
    unit: ClassVar[str] = "V"
    worst: ClassVar[float] = 0.0

    def compute(self, formula: str) -> float:
        """High limit (V); NaN (worst) when it holds no working ion."""
        high = _window(self.oracle, formula).high_V
        return math.nan if high is None else float(high)

    def labelled(self, e: EvaluationDoc) -> float | None:
        """The window at the structure's own energy."""
        w = e.window or {}
        return float(w["high_V"]) if w.get("status") == "ok" and w.get("high_V") is not None else None


@PROPERTIES.register("capacity_mAh_g")
class CapacityProperty(_Exact):
    """Theoretical gravimetric capacity (mAh/g) of the removable working ions."""

    name: ClassVar[str] = "capacity_mAh_g"
    unit: ClassVar[str] = "mAh/g"
    worst: ClassVar[float] = 0.0

    def compute(self, formula: str) -> float:
        """Capacity from the composition."""
        return theoretical_capacity(formula)

    def labelled(self, e: EvaluationDoc) -> float | None:
        """The electrode result's capacity where computed."""
        el = e.electrode or {}
        return float(el["capacity_mAh_g"]) if el.get("status") == "ok" else None


@PROPERTIES.register("energy_density_Wh_kg")
class EnergyDensityProperty(_Exact):
    """Specific energy (Wh/kg): each member's learned average voltage times the theoretical capacity."""

    name: ClassVar[str] = "energy_density_Wh_kg"
    unit: ClassVar[str] = "Wh/kg"
    needs: ClassVar[tuple[str, ...]] = ("average_voltage",)
    worst: ClassVar[float] = 0.0

    def compute(self, formula: str) -> float:
        """The capacity (the voltage comes from the learned members)."""
        return theoretical_capacity(formula)

    def samples(self, ctx: RoundContext, inputs: PropertyInputs) -> np.ndarray:
        """``K x n``: voltage members (V) x capacity (mAh/g) = Wh/kg."""
        capacity = np.array([self.value(c.reduced_formula) for c in inputs.compositions])
        return np.asarray(inputs.learned["average_voltage"], dtype=float) * capacity[None, :]

    def labelled(self, e: EvaluationDoc) -> float | None:
        """The electrode result's specific energy where computed."""
        el = e.electrode or {}
        return float(el["energy_density_Wh_kg"]) if el.get("status") == "ok" else None

    def observed(self, ctx: RoundContext, evaluations: list[EvaluationDoc]) -> np.ndarray:
        """Computed values; NaN where no electrode result exists (the voltage is unknown)."""
        return np.array([v if (v := self.labelled(e)) is not None else math.nan for e in evaluations], dtype=float)
