"""Candidate generation: registered generators (substitution, ion exchange, PyXtal, a learned Wyckoff transformer),
the filters every candidate passes, seeds."""

import generation.learned
import generation.random_symmetric
import generation.substitution  # noqa: F401
from generation.base import Candidate, GenerationRequest, Generator, quota_counts
from generation.config import GenerateConfig
from generation.filters import FilterReport, rejection_reason, screen
from generation.registry import GENERATORS
from generation.seeds import DEFAULT_SEEDS, load_seeds
from generation.substitution import generate_candidates

__all__ = [
    "DEFAULT_SEEDS",
    "GENERATORS",
    "Candidate",
    "FilterReport",
    "GenerateConfig",
    "GenerationRequest",
    "Generator",
    "generate_candidates",
    "load_seeds",
    "quota_counts",
    "rejection_reason",
    "screen",
]
