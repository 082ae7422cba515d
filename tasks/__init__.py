"""Prefect tasks: thin wrappers of the stages in :mod:`loop.stages`.

Each task takes (config, plain inputs), opens the store from ``config.store_uri`` and calls the
library; nothing here does science.
"""

from tasks.stages import (
    acquire_task,
    begin_round_task,
    check_store_task,
    complete_round_task,
    electrode_task,
    evaluate_share_task,
    evaluate_task,
    generate_task,
    predict_task,
    prepare_properties_task,
    prepare_task,
    record_timings_task,
    retrain_task,
    seed_task,
    transport_task,
)

__all__ = [
    "acquire_task",
    "begin_round_task",
    "check_store_task",
    "complete_round_task",
    "electrode_task",
    "evaluate_share_task",
    "evaluate_task",
    "generate_task",
    "predict_task",
    "prepare_properties_task",
    "prepare_task",
    "record_timings_task",
    "retrain_task",
    "seed_task",
    "transport_task",
]
