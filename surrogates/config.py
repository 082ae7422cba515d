"""Knobs of the surrogate (property-predicting GNN ensemble) stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Below this many labelled structures no validation split is made: the metrics are then computed on the
#: training data and flagged with ``held_out=False``.
MIN_STRUCTURES_FOR_VALIDATION = 10

#: MEGNet hyper-parameters per ``EnsembleConfig.hidden_size``. ``cutoff`` and ``element_types`` are added
#: by the builder. Parameter counts (with the 89 ``matgl.config.DEFAULT_ELEMENTS``): small 36,323;
#: default 189,621 (matgl's own MEGNet defaults).
MEGNET_SIZES: dict[str, dict[str, object]] = {
    "small": {
        "dim_node_embedding": 16,
        "dim_edge_embedding": 50,
        "dim_state_embedding": 2,
        "nblocks": 2,
        "hidden_layer_sizes_input": (32, 16),
        "hidden_layer_sizes_conv": (32, 32, 16),
        "hidden_layer_sizes_output": (16, 8),
    },
    "medium": {
        "dim_node_embedding": 16,
        "dim_edge_embedding": 50,
        "dim_state_embedding": 2,
        "nblocks": 2,
        "hidden_layer_sizes_input": (64, 32),
        "hidden_layer_sizes_conv": (64, 64, 32),
        "hidden_layer_sizes_output": (32, 16),
    },
    "default": {
        "dim_node_embedding": 16,
        "dim_edge_embedding": 100,
        "dim_state_embedding": 2,
        "nblocks": 3,
        "hidden_layer_sizes_input": (64, 32),
        "hidden_layer_sizes_conv": (64, 64, 32),
        "hidden_layer_sizes_output": (32, 16),
    },
}


class EnsembleConfig(BaseModel):
    """How a bootstrap ensemble of GNN regressors is built and trained (one scalar target per structure)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    architecture: Literal["megnet", "m3gnet", "tensornet"] = Field(
        "megnet",
        description="GNN architecture of every member: 'megnet' (trained as one vectorised module, the fast "
        "path), 'm3gnet' or 'tensornet' (matgl's PyG models, trained side by side in one loop).",
    )
    descriptor: Literal["auto", "chgnet-gb", "hurdle-gb", "gb-ensemble"] | None = Field(
        None,
        description="Train descriptor ensembles instead of GNNs (loop surrogates: surrogates.descriptor_surrogate): "
        "'auto' picks per target (hurdle-gb for a zero-inflated target, else chgnet-gb: cross-fitted boosting on "
        "CHGNet's energy and crystal features with an error model); n_members, seed and num_threads apply, the "
        "GNN settings do not. None: the GNN ensemble of 'architecture'.",
    )
    hidden_size: Literal["small", "medium", "default"] = Field(
        "small",
        description="Model size: 'small' is a 36,323-parameter MEGNet (2 blocks); 'medium' 2 blocks of matgl's "
        "default widths with 50 Gaussians; 'default' is matgl's 189,621-parameter MEGNet (3 blocks). Vectorised "
        "5-member training on perov_5 cells, 1 CPU thread: about 3,700 / 1,700 / 1,500 member-structures/s.",
    )
    n_members: int = Field(5, ge=1, description="Number of independently trained members in the ensemble.")
    epochs: int = Field(60, ge=1, description="Maximum number of passes over each member's training sample.")
    batch_size: int = Field(16, ge=1, description="Structures per optimisation step.")
    learning_rate: float = Field(1e-3, gt=0.0, description="Adam learning rate (per step, dimensionless).")
    weight_decay: float = Field(0.0, ge=0.0, description="Adam L2 weight decay (dimensionless).")
    cutoff: float = Field(4.0, gt=0.0, le=10.0, description="Graph construction radius cutoff in Å.")
    bootstrap: bool = Field(
        True,
        description="Each member trains on its own bootstrap resample (drawn with replacement) of the "
        "training split; if False all members see the full training split and differ only by their seed.",
    )
    seed: int = Field(0, ge=0, description="Base random seed; member k uses seed + k. Same seed, same ensemble.")
    val_fraction: float = Field(
        0.2,
        ge=0.0,
        le=0.5,
        description="Fraction of the structures held out for validation metrics (and early stopping) when at "
        f"least {MIN_STRUCTURES_FOR_VALIDATION} are given; 0 trains on everything (metrics then on training "
        "data).",
    )
    patience: int | None = Field(
        None,
        ge=1,
        description="Stop a member after this many epochs without improvement of its validation loss and "
        "restore its best weights; None trains for all epochs. Ignored when there is no validation split.",
    )
    num_threads: int | None = Field(
        None,
        ge=1,
        description="torch intra-op CPU threads during training and inference; None (default): the caller's "
        "setting (the loop's runtime.num_threads, the train command's --threads).",
    )
    loss: Literal["mse", "l1", "huber"] = Field(
        "mse",
        description="Training loss on standardised targets: mean squared error, mean absolute error (optimises "
        "MAE directly), or Huber (quadratic below 1 target std, linear above).",
    )
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="Learning-rate schedule per optimisation step: 'constant', or 'cosine' decay from "
        "learning_rate to learning_rate * min_lr_ratio over the planned epochs.",
    )
    min_lr_ratio: float = Field(
        0.02, gt=0.0, le=1.0, description="Final / initial learning rate of the cosine schedule (dimensionless)."
    )
    warm_start: bool = Field(
        True,
        description="When fit() is given a previous ensemble of the same architecture, size, cutoff and member "
        "count, start every member from its weights instead of a fresh initialisation.",
    )
    warm_start_epochs: int = Field(
        0,
        ge=0,
        description="Maximum epochs of a warm-started fit (a retrain on a few more labels needs fewer passes "
        "than a fresh one); 0 uses ``epochs``.",
    )
    inference_batch_size: int = Field(128, ge=1, description="Structures per forward pass when predicting.")
