"""Candidate generation: seeds, registered generators (data-mined substitution, ion exchange) and filters."""

import generation.substitution  # noqa: F401  (registers the built-in generators)
from generation.base import Candidate, Generator, run_generators
from generation.config import GenerateConfig
from generation.registry import GENERATORS
from generation.seeds import DEFAULT_SEEDS, load_seeds
from generation.substitution import generate_candidates

__all__ = [
    "DEFAULT_SEEDS",
    "GENERATORS",
    "Candidate",
    "GenerateConfig",
    "Generator",
    "generate_candidates",
    "load_seeds",
    "run_generators",
]
