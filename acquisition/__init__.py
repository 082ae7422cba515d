"""Acquisition: BoTorch strategies over the surrogate posterior on a discrete candidate pool.

Entry points: :func:`select` (several outcomes, objectives, constraints, diversity) and :func:`select_batch`
(one outcome, the loop's original call). Configuration: :class:`AcquisitionConfig`, loadable from YAML or a
named preset with :func:`load_acquisition_config`. Strategies: :data:`STRATEGIES`, filled by decorators.

Modules (each imports only those listed before it, and ``core``):

- ``registry``: :data:`STRATEGIES`, name -> strategy factory.
- ``config``: the validated settings; checks ``strategy`` against the registry.
- ``objectives``: objectives and constraints as tensor functions of the outcomes.
- ``model``: BoTorch models over the candidate rows (ensemble, GP) and recalibration.
- ``problem``: :class:`AcquisitionProblem` (what a strategy sees) and the scorer contract.
- ``diversity``: the batch diversity rules.
- ``botorch_strategies`` / ``direct_strategies``: the built-in strategies (registered on import, below).
- ``selection``: :func:`select`, :func:`select_batch`, :class:`Selection`.

Importing this package registers the built-in strategies, so every module of it (``acquisition.config``
included, which Python imports only after this file) sees them.
"""

# The built-in strategies register themselves in STRATEGIES when imported; nothing else imports them.
from acquisition import botorch_strategies, direct_strategies  # noqa: F401
from acquisition.config import (
    AcquisitionConfig,
    ConstraintSpec,
    DiversityConfig,
    ObjectiveSpec,
    PosteriorConfig,
    load_acquisition_config,
    parse_acquisition_config,
    preset_names,
)
from acquisition.model import (
    CandidateSetEnsemble,
    CandidateSetGP,
    fit_gp,
    fit_spread_scale,
    fit_spread_scale_moments,
    scale_spread,
)
from acquisition.problem import AcquisitionProblem, Scorer, static_scorer
from acquisition.registry import STRATEGIES
from acquisition.selection import Selection, select, select_batch

__all__ = [
    "STRATEGIES",
    "AcquisitionConfig",
    "AcquisitionProblem",
    "CandidateSetEnsemble",
    "CandidateSetGP",
    "ConstraintSpec",
    "DiversityConfig",
    "ObjectiveSpec",
    "PosteriorConfig",
    "Scorer",
    "Selection",
    "fit_gp",
    "fit_spread_scale",
    "fit_spread_scale_moments",
    "load_acquisition_config",
    "parse_acquisition_config",
    "preset_names",
    "scale_spread",
    "select",
    "select_batch",
    "static_scorer",
]
