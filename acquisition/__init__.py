"""Acquisition: BoTorch strategies over the ensemble posterior on a discrete candidate pool."""

from acquisition.config import AcquisitionConfig
from acquisition.model import CandidateSetEnsemble
from acquisition.strategies import STRATEGIES, Selection, select_batch

__all__ = ["STRATEGIES", "AcquisitionConfig", "CandidateSetEnsemble", "Selection", "select_batch"]
