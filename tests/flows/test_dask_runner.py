"""A round on a local 2-worker Dask cluster (one relax task per worker share) gives the same results as
the default runner."""

from __future__ import annotations

import re

import pytest

from flows.discovery_loop import discovery_loop
from store import open_store

pytestmark = pytest.mark.slow

BASE = {
    "rounds": 1,
    "batch_size": 2,
    "candidates_per_round": 8,
    "seeds": ("pymatgen:Li2O", "pymatgen:Li2O2"),
    "surrogate": {"n_members": 2, "epochs": 5, "num_threads": 1},
    "oracle": {
        "relax": {"fmax": 0.2, "max_steps": 40},
        "completion": {"max_structures": 0},
    },  # orchestration, not the hull: completion is tested in tests/oracle and tests/loop
    "store_uri": "embedded",
    "database": "dask_cmp",
}


def _results(campaign: str) -> list[tuple[int, str, str, float | None]]:
    store = open_store("embedded", "dask_cmp")
    docs = store.evaluations.find({"campaign": campaign})
    return sorted(
        (d["provenance"]["round"], d["formula"], d["status"], round(d["formation_energy_per_atom"] or 0.0, 5))
        for d in docs
    )


def test_dask_runner_matches_the_default_runner(prefect_harness: None) -> None:
    local = discovery_loop(campaign="runner-local", **BASE)
    dask = discovery_loop(campaign="runner-dask", runner={"kind": "dask", "dask_workers": 2}, **BASE)
    assert local["rounds_run"] == dask["rounds_run"] == [0, 1]
    expected = _results("runner-local")
    assert len(expected) == 4  # 2 seeds + a batch of 2
    assert _results("runner-dask") == expected
    # each Dask round split its 2 candidates into one share per worker; the local rounds ran no relax task
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        names = [t.name for t in client.read_task_runs(limit=200)]
    relax = [n for n in names if re.fullmatch(r"evaluate-\d+of\d+", n)]  # the local runner's: evaluate-<hash>
    assert sorted(relax) == ["evaluate-1of2", "evaluate-1of2", "evaluate-2of2", "evaluate-2of2"]
