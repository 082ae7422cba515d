"""Plug-ins: a toy labeler and a toy generator, a class and a decorator each, run a 2-round loop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymatgen.core import Structure

from core.registry import DuplicateRegistrationError
from generation import GENERATORS, Candidate, GenerateConfig, GenerationRequest
from loop.labelers.base import SimpleLabeler
from loop.plan import build_plan  # noqa: F401  (registers the built-in sources and labelers)
from loop.registry import LABELERS, SOURCES
from store import open_store
from store.connection import close_all


class Density(SimpleLabeler):  # a toy labeler: the mass density (g/cm³) of the structure as given
    name = "toy-density"
    targets = ("density",)

    def compute(self, structure: Structure) -> dict[str, float]:
        return {"density": float(structure.density)}


class Swap:  # a toy generator: every Li of a parent swapped for K, then for Rb, in a cell twice the volume
    def generate(self, request: GenerationRequest, config: GenerateConfig) -> list[Candidate]:
        out = []
        for name, parent in request.parents:
            for new in ("K", "Rb") if "Li" in parent.symbol_set else ():
                s = parent.copy()
                s.replace_species({"Li": new})
                s.scale_lattice(2.0 * s.volume)  # K and Rb are larger: the shared filters refuse a squeezed cell
                out.append(Candidate(structure=s, parent=name, kind="swap", substitutions={"Li": new}))
        return out


@pytest.fixture
def plugins() -> Iterator[None]:
    LABELERS.register("toy-density")(Density)
    GENERATORS.register("swap")(Swap)
    yield
    LABELERS.remove("toy-density")
    GENERATORS.remove("swap")
    close_all()


def test_registering_a_name_twice_is_an_error(plugins: None) -> None:
    with pytest.raises(DuplicateRegistrationError, match="toy-density"):
        LABELERS.register("toy-density")(Density)
    with pytest.raises(DuplicateRegistrationError, match="relax"):
        LABELERS.register("relax")(Density)
    with pytest.raises(DuplicateRegistrationError, match="pool"):
        SOURCES.register("pool")(object)
    with pytest.raises(DuplicateRegistrationError, match="substitution"):
        GENERATORS.register("substitution")(Swap)


@pytest.mark.slow
def test_a_toy_labeler_and_generator_run_a_two_round_loop(plugins: None, prefect_harness: None) -> None:
    from flows.discovery_loop import discovery_loop

    params = {
        "campaign": "toys",
        "rounds": 2,
        "batch_size": 2,
        "candidates_per_round": 4,
        "seeds": ("pymatgen:Li2O", "pymatgen:LiFePO4"),
        "labeler": "toy-density",
        "generate": {"generators": ["swap"], "require_any": []},
        "surrogate": {"n_members": 2, "epochs": 3},
        "acquisition": {"strategy": "greedy"},
        "store_uri": "mongomock://toys",
    }
    result = discovery_loop(**params)
    assert result["rounds_run"] == [0, 1, 2]
    store = open_store("mongomock://toys", "battery_discovery")
    rounds = store.list_rounds("toys")
    assert [(r.round, r.status, r.n_evaluated) for r in rounds] == [
        (0, "completed", 2),
        (1, "completed", 2),
        (2, "completed", 2),
    ]
    assert rounds[1].n_generated >= 2 and rounds[2].prediction_model == "toys-r1"
    swapped = list(store.candidates.find({"campaign": "toys", "source": "swap"}))
    assert len(swapped) == 4 and all(c["parent"].startswith("pymatgen:") for c in swapped)
    labels = [e["labels"]["density"] for e in store.evaluations.find({"campaign": "toys"})]
    assert len(labels) == 6 and all(0 < d < 20 for d in labels)
    assert rounds[-1].best[0]["density"] == min(labels)  # lowest first
    assert {e["oracle_key"] for e in store.evaluations.find()} == {Density().key}
