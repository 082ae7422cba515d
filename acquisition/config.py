"""Acquisition settings: one validated pydantic model with small nested models, loadable from YAML.

The model is the ``acquisition`` field of :class:`loop.config.LoopConfig` (and so a Prefect
flow parameter). Every field has a default that keeps the original single-objective behaviour: qUCB
(``beta`` 2) on the first outcome, minimised.

Outcome names are not known here (they depend on what the surrogate predicts); checks that need them
run in :meth:`AcquisitionConfig.check_outcomes`, which :func:`acquisition.select` calls.

``strategy`` is checked against :data:`acquisition.registry.STRATEGIES` when a config is validated (not
when this module is imported). This module imports only that registry of the package; the built-in
strategies register themselves when the package ``acquisition`` is imported (always before this module).

Validators raise :class:`~pydantic_core.PydanticCustomError` so that a message reads
``<field>: <reason>`` without pydantic's ``Value error,`` prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from acquisition.registry import STRATEGIES
from core.errors import ConfigError
from core.validation import describe_validation_error
from core.yamlfile import read_mapping

PRESET_DIR = Path(__file__).resolve().parent / "presets"
"""Folder of the named presets (``preset:<name>`` loads ``<name>.yaml`` from it)."""

MULTI_OBJECTIVE_STRATEGIES = frozenset({"qlognehvi"})
"""Strategies that optimise several objectives jointly (need at least two)."""

THRESHOLD_STRATEGIES = frozenset({"target_probability"})
"""Strategies that need a threshold on every objective (``low`` for max, ``high`` for min, both for window)."""


def _invalid(reason: str) -> PydanticCustomError:
    """A validation error whose message is ``reason`` as given (no ``Value error,`` prefix)."""
    return PydanticCustomError("value_error", "{reason}", {"reason": reason})


class ObjectiveSpec(BaseModel):
    """One objective: an outcome to maximise, minimise or pull into a window ``[low, high]``.

    Internally every objective is turned into a quantity to *maximise*: ``y`` (max), ``-y`` (min) or
    ``-distance(y, [low, high])`` (window: 0 inside, growing linearly outside).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field(..., min_length=1, description="Outcome name, e.g. 'band_gap' (eV) or 'e_above_hull' (eV/atom).")
    direction: Literal["max", "min", "window"] = Field(
        "max", description="'max', 'min', or 'window' (maximise minus the distance to [low, high])."
    )
    low: float | None = Field(
        None,
        description="Lower bound in the outcome's units: the window's lower edge, or for 'max' the target "
        "threshold used by target_probability (P(y >= low)).",
    )
    high: float | None = Field(
        None,
        description="Upper bound in the outcome's units: the window's upper edge, or for 'min' the target "
        "threshold used by target_probability (P(y <= high)).",
    )
    weight: float = Field(
        1.0,
        gt=0.0,
        description="Weight in the sum that single-objective strategies maximise when there are several "
        "objectives (dimensionless; the transformed objectives keep their units).",
    )

    @model_validator(mode="after")
    def _window(self) -> ObjectiveSpec:
        if self.direction == "window":
            if self.low is None or self.high is None:
                raise _invalid(f"objective {self.name!r}: a window needs both low and high")
            if self.low > self.high:
                raise _invalid(f"objective {self.name!r}: window low {self.low:g} > high {self.high:g}")
        return self


class ConstraintSpec(BaseModel):
    """An outcome constraint ``<name> <op> <value>``, e.g. ``e_above_hull <= 0.05`` (eV/atom)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field(..., min_length=1, description="Outcome name the constraint applies to.")
    op: Literal["<=", ">=", "<", ">"] = Field(..., description="Comparison; '<' and '<=' differ only for ensembles.")
    value: float = Field(..., description="Threshold in the outcome's units.")

    def satisfied(self, y: Any) -> Any:
        """Elementwise ``y <op> value`` for a float, numpy array or torch tensor."""
        if self.op == "<=":
            return y <= self.value
        if self.op == "<":
            return y < self.value
        if self.op == ">=":
            return y >= self.value
        return y > self.value

    @property
    def upper(self) -> bool:
        """True for ``<``/``<=`` (an upper bound), False for ``>``/``>=``."""
        return self.op in ("<", "<=")


class DiversityConfig(BaseModel):
    """Keeps a batch from being several copies of one composition. Needs the candidates' ``keys``."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    max_per_key: int | None = Field(
        None, ge=1, description="At most this many candidates per group in one batch; None: no cap."
    )
    group_by: Literal["formula", "chemsys"] = Field(
        "formula",
        description="Group of the cap: the reduced formula as given, or its chemical system (set of elements).",
    )
    min_composition_distance: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Skip a candidate whose composition is closer than this to one already in the batch "
        "(half the L1 distance between atomic fractions: 0 same composition, 1 no shared element). 0: off.",
    )

    @property
    def active(self) -> bool:
        """Whether any diversity rule is on."""
        return self.max_per_key is not None or self.min_composition_distance > 0.0


class PosteriorConfig(BaseModel):
    """Which posterior the strategies see over the candidate pool."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: Literal["ensemble", "gp"] = Field(
        "ensemble",
        description="'ensemble': the GNN members as a BoTorch EnsemblePosterior; 'gp': a SingleTaskGP fitted on "
        "descriptors of the labelled structures (in the loop: the descriptor surrogate's features, "
        "describe + CHGNet, of the labelled and the pool structures; select() needs features and "
        "observed_features).",
    )
    spread_scale: float = Field(
        1.0,
        gt=0.0,
        le=1000.0,
        description="Multiplies each member's deviation from the ensemble mean (recalibration factor s; "
        "dimensionless). With recalibrate on, used only for an outcome it cannot fit (too few held-out pairs, no "
        "calibration data).",
    )
    recalibrate: bool = Field(
        False,
        description="Fit s per outcome by minimising the Gaussian NLL of (y - mean) / (s * std), and apply it: "
        "in the loop on the held-out pairs of earlier rounds (each acquired candidate's prediction at acquisition "
        "and its label, at least 8 per learned target, else spread_scale); from Python on "
        "select(..., calibration=...).",
    )

    @model_validator(mode="after")
    def _ensemble_only(self) -> PosteriorConfig:
        if self.kind != "ensemble":
            # the GP's variance is fitted with its hyper-parameters: there is no member spread to scale
            if self.recalibrate:
                raise _invalid("recalibrate scales the ensemble members' spread: it needs kind 'ensemble', not 'gp'")
            if self.spread_scale != 1.0:
                raise _invalid("spread_scale scales the ensemble members' spread: it needs kind 'ensemble', not 'gp'")
        return self


class AcquisitionConfig(BaseModel):
    """How a batch is chosen from the candidate pool given the surrogate posterior."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    strategy: str = Field(
        "ucb",
        json_schema_extra=lambda schema: schema.update(enum=STRATEGIES.names()),  # a dropdown in the Prefect UI
        description="Registered strategy: ucb (qUpperConfidenceBound), logei (qLogExpectedImprovement), greedy "
        "(best mean), random, thompson (one posterior draw per batch slot), target_probability (probability "
        "that every objective meets its threshold/window), qlognehvi (qLogNoisyExpectedHypervolumeImprovement).",
    )
    beta: float = Field(2.0, ge=0.0, le=100.0, description="Exploration weight of qUCB (dimensionless).")
    maximize: bool = Field(
        False,
        description="Direction of the default objective (the first outcome) when 'objectives' is empty "
        "(False: minimise, e.g. formation energy).",
    )
    num_samples: int = Field(
        256, ge=1, le=16384, description="Posterior samples (indices into the ensemble) for MC acquisition."
    )
    seed: int = Field(0, ge=0, description="Seed of random choices, Thompson draws and the MC sampler.")
    objectives: tuple[ObjectiveSpec, ...] = Field(
        (), description="Objectives; empty: the first outcome, maximised if 'maximize' else minimised."
    )
    constraints: tuple[ConstraintSpec, ...] = Field(
        (), description="Outcome constraints a selected candidate should satisfy."
    )
    diversity: DiversityConfig = Field(default_factory=DiversityConfig)
    posterior: PosteriorConfig = Field(default_factory=PosteriorConfig)
    ref_point: tuple[float, ...] | None = Field(
        None,
        description="qlognehvi reference point, one value per objective in its own units: the worst acceptable "
        "value (for 'window': the largest acceptable distance from the window). None: inferred from the "
        "observed Pareto front (nadir minus 10% of the range).",
    )
    probability: Literal["gaussian", "ensemble"] = Field(
        "gaussian",
        description="How probabilities (target_probability, constraint factors) are computed: a normal with the "
        "posterior mean and std, or the fraction of ensemble members (ensemble posterior only).",
    )
    num_threads: int = Field(
        1,
        ge=1,
        le=256,
        description="torch threads while selecting (restored afterwards); 1 is fastest for these small tensors "
        "on a shared machine (a GP fit is up to 10x slower with 2 threads on 2 busy cores).",
    )
    min_feasibility: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="greedy: candidates whose probability of meeting all constraints is below this are ranked "
        "after the others.",
    )

    @field_validator("strategy")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise _invalid(f"unknown strategy {value!r}; registered: {', '.join(STRATEGIES.names())}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AcquisitionConfig:
        names = [o.name for o in self.objectives]
        if len(set(names)) != len(names):
            raise _invalid(f"objectives: an outcome appears twice ({', '.join(names)})")
        if self.strategy in MULTI_OBJECTIVE_STRATEGIES and len(self.objectives) < 2:
            raise _invalid(f"strategy {self.strategy} needs at least 2 objectives, got {len(self.objectives)}")
        if self.ref_point is not None and len(self.ref_point) != len(self.objectives):
            raise _invalid(f"ref_point has {len(self.ref_point)} values for {len(self.objectives)} objectives")
        if self.probability == "ensemble" and self.posterior.kind != "ensemble":
            raise _invalid("probability 'ensemble' counts members: it needs posterior.kind 'ensemble'")
        if self.strategy in THRESHOLD_STRATEGIES:
            for o in self.objectives:
                if (o.direction == "max" and o.low is None) or (o.direction == "min" and o.high is None):
                    bound = "low" if o.direction == "max" else "high"
                    raise _invalid(
                        f"strategy {self.strategy}: objective {o.name!r} ({o.direction}) needs a threshold '{bound}'"
                    )
        return self

    def effective_objectives(self, outcome_names: Sequence[str]) -> tuple[ObjectiveSpec, ...]:
        """The objectives, or the default one (first outcome, direction from ``maximize``) when none are set."""
        if self.objectives:
            return self.objectives
        return (ObjectiveSpec(name=outcome_names[0], direction="max" if self.maximize else "min"),)

    def check_outcomes(self, outcome_names: Sequence[str]) -> None:
        """Raise :class:`ConfigError` if an objective or constraint names an outcome that is not predicted."""
        known = list(outcome_names)
        if not known:
            raise ConfigError("acquisition: no outcome names given")
        for where, items in (("objectives", self.objectives), ("constraints", self.constraints)):
            for i, item in enumerate(items):
                if item.name not in known:
                    raise ConfigError(
                        f"invalid config value for acquisition.{where}.{i}.name: unknown outcome {item.name!r}; "
                        f"predicted outcomes: {', '.join(known)}"
                    )
        if self.strategy in THRESHOLD_STRATEGIES and not self.objectives and not self.constraints:
            raise ConfigError(
                "invalid config value for acquisition.objectives: target_probability needs objectives with "
                "thresholds or constraints"
            )


class _Section(BaseModel):
    """``{acquisition: <AcquisitionConfig keys>}``: validating through it names fields ``acquisition.<field>``,
    as in a loop config."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    acquisition: AcquisitionConfig


def _validate(data: dict[str, Any]) -> AcquisitionConfig:
    """Validate the AcquisitionConfig keys in ``data``; ValidationError locations start with ``acquisition``."""
    return _Section.model_validate({"acquisition": data}).acquisition


def parse_acquisition_config(data: dict[str, Any]) -> AcquisitionConfig:
    """Validate a plain mapping, raising :class:`ConfigError` with one line naming the bad field."""
    if not isinstance(data, dict):
        raise ConfigError("acquisition config: expected a mapping of keys")
    try:
        return _validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def preset_names() -> list[str]:
    """Names accepted as ``preset:<name>``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_acquisition_config(path: str | Path) -> AcquisitionConfig:
    """Read an acquisition config from a YAML file or a named preset (``preset:electrolyte``).

    The file holds the :class:`AcquisitionConfig` keys at the top level; a file with a top-level
    ``acquisition:`` mapping (a loop config) is accepted too and only that section is read.

    Raises:
        ConfigError: missing file or preset, invalid YAML, or an invalid value (one line naming the field).
    """
    text = str(path)
    if text.startswith("preset:"):
        name = text.removeprefix("preset:")
        file = PRESET_DIR / f"{name}.yaml"
        if not file.is_file():
            raise ConfigError(f"unknown acquisition preset {name!r}; presets: {', '.join(preset_names())}")
    else:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"acquisition config file not found: {file}")
    data = read_mapping(file, "acquisition config keys")
    if set(data) == {"acquisition"} and isinstance(data["acquisition"], dict):
        data = data["acquisition"]
    try:
        return _validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{file.name}: {describe_validation_error(exc)}") from None
