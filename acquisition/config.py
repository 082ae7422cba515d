"""Acquisition settings: one small validated model, loadable from YAML."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Strategy = Literal["ucb", "logei", "greedy", "random"]


class AcquisitionConfig(BaseModel):
    """How a batch is chosen from the candidate pool given the surrogate posterior."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Strategy = Field(
        "ucb",
        description="ucb: qUpperConfidenceBound; logei: qLogExpectedImprovement; greedy: best mean; random.",
    )
    beta: float = Field(2.0, ge=0.0, le=100.0, description="Exploration weight of qUCB (dimensionless).")
    maximize: bool = Field(False, description="Maximise the target property (False: minimise, e.g. formation energy).")
    num_samples: int = Field(
        256, ge=1, le=16384, description="Posterior samples (indices into the ensemble) for MC acquisition."
    )
    seed: int = Field(0, ge=0, description="Seed of random choices and of the MC sampler.")
