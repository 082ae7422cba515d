"""Acquisition: BoTorch strategies over the surrogate posterior on a discrete candidate pool.

Entry points: :func:`select` (several outcomes, objectives, constraints, diversity) and :func:`select_batch`
(one outcome, the loop's original call). Configuration: :class:`AcquisitionConfig`, loadable from YAML or a
named preset with :func:`load_acquisition_config`.
"""

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
from acquisition.model import CandidateSetEnsemble, CandidateSetGP, fit_gp, fit_spread_scale, scale_spread
from acquisition.strategies import STRATEGIES, AcquisitionProblem, Selection, select, select_batch

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
    "Selection",
    "fit_gp",
    "fit_spread_scale",
    "load_acquisition_config",
    "parse_acquisition_config",
    "preset_names",
    "scale_spread",
    "select",
    "select_batch",
]
