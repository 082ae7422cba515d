"""``e_above_hull``: the learned formation energy against the hull of real competing phases.

For a candidate not yet labelled, each ensemble member's formation energy minus the formation energy of the
hull at its composition (the Materials Project reference phases of :mod:`oracle.phases` plus every structure
the campaign labelled in that chemical system), so acquisition can target stability rather than formation
energy. A labelled structure carries the oracle's signed value (``EvaluationDoc.energy_above_hull``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from core.errors import ConfigError
from loop.config import LoopConfig
from loop.properties.base import PropertyInputs
from loop.registry import PROPERTIES
from loop.roles import RoundContext
from oracle.config import OracleConfig
from store.documents import EvaluationDoc


def campaign_context(ctx: RoundContext) -> list[tuple[str, str, float]]:
    """The campaign's labelled structures as hull phases: (evaluation id, formula, corrected energy eV/atom)."""
    rows = ctx.store.evaluation_rows(
        ctx.campaign, ctx.labeler_key, ["formula", "energy_per_atom", "corrected_energy_per_atom"]
    )
    out = []
    for r in rows:
        energy = r.get("corrected_energy_per_atom")
        energy = r.get("energy_per_atom") if energy is None else energy
        if isinstance(energy, int | float) and math.isfinite(energy):
            out.append((str(r["_id"]), str(r["formula"]), float(energy)))
    return out


def campaign_phases(phases: Any, context: list[tuple[str, str, float]]) -> Any:
    """The reference phases as this campaign's labels see them (:meth:`oracle.phases.PhaseSet.restricted` to the
    chemical systems of ``context``): predictions do not depend on what other campaigns computed."""
    from pymatgen.core import Composition

    systems = {frozenset(el.symbol for el in Composition(formula).elements) for _, formula, _ in context}
    return phases.restricted(systems)


@PROPERTIES.register("e_above_hull")
@dataclass(frozen=True, kw_only=True)
class HullProperty:
    """Energy above the hull of MP reference phases and the campaign's labels (eV/atom, signed)."""

    name: ClassVar[str] = "e_above_hull"
    unit: ClassVar[str] = "eV/atom"
    needs: ClassVar[tuple[str, ...]] = ("formation_energy_per_atom",)
    reads: ClassVar[tuple[str, ...]] = ("oracle",)

    oracle: OracleConfig

    @classmethod
    def applies(cls, config: LoopConfig) -> bool:
        """Whether ``config``'s oracle has MP reference phases (energies on the MP scale, phase files set)."""
        from oracle.compat import mp_compatible
        from oracle.potentials import get_potential

        scale = get_potential(config.oracle.final_potential).energy_scale
        return bool(config.oracle.reference_phases) and mp_compatible(scale, config.oracle.energy_correction)

    @classmethod
    def from_config(cls, config: LoopConfig) -> HullProperty:
        """The hull of ``config``'s oracle; ConfigError when it has no MP reference phases (energies not on the
        MP scale, or ``oracle.reference_phases`` empty)."""
        if not cls.applies(config):
            raise ConfigError(
                f"property e_above_hull compares with Materials Project phases, but potential "
                f"{config.oracle.final_potential!r} is not on the MP energy scale or oracle.reference_phases is "
                "empty: leave e_above_hull out of 'properties'"
            )
        return cls(oracle=config.oracle)

    def _phases(self) -> Any:
        from oracle.completion import reference_phase_set

        return reference_phase_set(self.oracle)

    def describe(self) -> dict[str, Any]:
        """Where the hull's phases come from (source -> count, and whether MP is asked online)."""
        phases = self._phases()
        sources: dict[str, int] = {}
        for p in phases.compounds:
            sources[p.source] = sources.get(p.source, 0) + 1
        return {"phases": sources, "online": phases.competing is not None}

    def version(self, ctx: RoundContext) -> str:
        """The phase files in the hull."""
        return "mp-phases:" + ",".join(self.oracle.reference_phases)

    def prepare(self, ctx: RoundContext, *, on_stage: Any = None) -> None:
        """Read the reference phases once (a missing file is an error before any round runs)."""
        if on_stage is not None:
            on_stage("reading reference phases")
        self._phases()

    def samples(self, ctx: RoundContext, inputs: PropertyInputs) -> np.ndarray:
        """``K x n``: each member's formation energy minus the hull's at the candidate's composition (eV/atom)."""
        formation = np.asarray(inputs.learned["formation_energy_per_atom"], dtype=float)
        context = campaign_context(ctx)
        hull = campaign_phases(self._phases(), context).hull_formation_energies(inputs.compositions, context=context)
        return formation - np.asarray(hull)[None, :]

    def observed(self, ctx: RoundContext, evaluations: list[EvaluationDoc]) -> np.ndarray:
        """The oracle's signed energy above hull of each labelled structure (NaN before the round's hull)."""
        return np.array(
            [e.energy_above_hull if e.energy_above_hull is not None else math.nan for e in evaluations], dtype=float
        )
