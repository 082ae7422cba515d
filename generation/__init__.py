"""Candidate generation: seeds, data-mined ionic substitution, ion exchange, filters, fingerprints."""

from generation.config import GenerateConfig
from generation.fingerprint import coarse_fingerprint, deduplicate
from generation.seeds import DEFAULT_SEEDS, load_seeds
from generation.substitution import Candidate, generate_candidates

__all__ = [
    "DEFAULT_SEEDS",
    "Candidate",
    "GenerateConfig",
    "coarse_fingerprint",
    "deduplicate",
    "generate_candidates",
    "load_seeds",
]
