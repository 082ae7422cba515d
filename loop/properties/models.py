"""Properties predicted by registered property models trained on public data (not retrained each round).

``band_gap`` (eV, trained on Materials Project band gaps) and ``log10_conductivity`` (log10 S/cm, trained on
OBELiX and the Liverpool database). Each names a registry model (``LoopConfig.property_models`` overrides the
default of :data:`surrogates.predictors.DEFAULT_MODELS`); a missing default model is trained and registered
before the first round (:meth:`ModelProperty.prepare`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pymatgen.core import Structure

from loop.config import LoopConfig
from loop.properties.base import PropertyInputs
from loop.registry import PROPERTIES
from loop.roles import RoundContext
from store.documents import EvaluationDoc

#: Loaded predictors: (store uri, database, model id) -> predictor.
_LOADED: dict[tuple[str, str, str], Any] = {}


@dataclass(frozen=True, kw_only=True)
class ModelProperty:
    """An outcome predicted by a registered property model, with its posterior samples."""

    name: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()

    model: str = ""
    """Registry reference (``name`` for the newest version or ``name-vK``); empty: the default model."""

    @classmethod
    def applies(cls, config: LoopConfig) -> bool:
        """A model applies to any structure."""
        return True

    @classmethod
    def from_config(cls, config: LoopConfig) -> ModelProperty:
        """The model named for this property in ``config.property_models`` (default: the registry default)."""
        return cls(model=config.property_models.get(cls.name, ""))

    def _ref(self) -> str:
        from surrogates.predictors import DEFAULT_MODELS

        return self.model or DEFAULT_MODELS[self.name][0]

    def version(self, ctx: RoundContext) -> str:
        """The registry id of the model this property reads now (``name-vK``)."""
        from surrogates.registry import resolve_model

        return resolve_model(ctx.store, self._ref()).id

    def _predictor(self, ctx: RoundContext) -> Any:
        from surrogates.predictors import load_predictor

        model_id = self.version(ctx)
        key = (ctx.store_uri, ctx.database, model_id)
        if key not in _LOADED:
            while len(_LOADED) >= 8:
                _LOADED.pop(next(iter(_LOADED)))
            _LOADED[key] = load_predictor(ctx.store, model_id)
        return _LOADED[key]

    def describe(self) -> dict[str, Any]:
        """The model reference used."""
        return {"model": self._ref()}

    def prepare(self, ctx: RoundContext, *, on_stage: Any = None) -> None:
        """Train and register the default model when none is registered (an explicit ``model`` must exist)."""
        from surrogates.predictors import ensure_model
        from surrogates.registry import resolve_model

        if self.model:
            resolve_model(ctx.store, self.model)  # ModelNotFoundError names it
            return
        ensure_model(ctx.store, self.name, database=ctx.database, on_stage=on_stage)

    def samples(self, ctx: RoundContext, inputs: PropertyInputs) -> np.ndarray:
        """``S x n`` samples of the model's posterior on the candidates' structures."""
        if not inputs.structures:
            return np.zeros((1, 0))
        return np.asarray(self._predictor(ctx).predict_samples(inputs.structures, seed=ctx.round_index), dtype=float)

    def observed(self, ctx: RoundContext, evaluations: list[EvaluationDoc]) -> np.ndarray:
        """The model's mean on the relaxed structures (a model property has no oracle label): the value stored by
        the score stage for this model, else predicted now."""
        model_id = self.version(ctx)
        out = np.full(len(evaluations), np.nan)
        todo = []
        for i, e in enumerate(evaluations):
            stored = e.properties.get(self.name, {})
            if stored.get("model") == model_id and isinstance(stored.get("mean"), int | float):
                out[i] = float(stored["mean"])
            elif e.relaxed_structure:
                todo.append(i)
        if todo:
            structures = [Structure.from_dict(evaluations[i].relaxed_structure) for i in todo]  # type: ignore[arg-type]
            mean, _ = self._predictor(ctx).predict(structures)
            out[todo] = np.asarray(mean, dtype=float)
        return out


@PROPERTIES.register("band_gap")
class BandGapProperty(ModelProperty):
    """Band gap (PBE, eV) from a model trained on Materials Project band gaps."""

    name: ClassVar[str] = "band_gap"
    unit: ClassVar[str] = "eV"


@PROPERTIES.register("log10_conductivity")
class ConductivityProperty(ModelProperty):
    """Room-temperature ionic conductivity (log10 S/cm) from a model trained on OBELiX and the Liverpool data."""

    name: ClassVar[str] = "log10_conductivity"
    unit: ClassVar[str] = "log10 S/cm"
