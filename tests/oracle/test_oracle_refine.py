"""The two-tier oracle (``OracleConfig.refine``) and the one way to run the oracle on structures
(``oracle.labelling.label_structures``), on test-double potentials."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError
from pymatgen.core import Composition, Structure

from oracle.config import OracleConfig, RefineConfig
from oracle.formation import formation_energy_per_atom
from oracle.labelling import label_structures
from oracle.relax import RelaxConfig
from oracle.testing import count_oracle_calls

Rocksalt = Callable[..., Structure]


class _References:
    """Fixed chemical potentials (eV/atom)."""

    def formation_energy_per_atom(self, composition: Composition | str, energy_total: float) -> float:
        return formation_energy_per_atom(composition, energy_total, {"Li": -1.0, "F": -1.0}.__getitem__)


def _oracle(refine: dict | None = None, **relax: object) -> OracleConfig:
    return OracleConfig(
        relax=RelaxConfig(potential="fake:lj", fmax=0.05, max_steps=100, **relax),  # type: ignore[arg-type]
        refine=RefineConfig(**{"potential": None, **(refine or {})}),
        energy_correction="none",
        batch_size=2,
    )


@pytest.mark.usefixtures("fake_potentials")
def test_changing_refine_changes_the_oracle_key() -> None:
    one = _oracle()
    single = _oracle({"potential": "fake:const"})
    relax = _oracle({"potential": "fake:const", "max_steps": 50})
    steps = _oracle({"potential": "fake:const", "max_steps": 10})
    keys = {c.key() for c in (one, single, relax, steps)}
    assert len(keys) == 4
    assert one.key().startswith("fake:lj|") and single.key().startswith("fake:lj+fake:const|")
    assert single.name == "fake:lj+fake:const" and single.final_potential == "fake:const"
    assert one.final_potential == "fake:lj"
    # result-neutral knobs leave it alone
    assert _oracle({"potential": "fake:const"}).key() == single.key()


def test_refine_refuses_an_unknown_potential() -> None:
    with pytest.raises(ValidationError, match="unknown potential"):
        OracleConfig(refine=RefineConfig(potential="nonsense:x"))


@pytest.mark.usefixtures("fake_potentials")
def test_single_point_refine_labels_the_first_tiers_structure_with_the_second(
    make_rocksalt: Rocksalt,
) -> None:
    cells = [make_rocksalt(4.4), make_rocksalt(4.6), make_rocksalt(4.8)]
    one_tier = label_structures(_oracle(), cells, references=_References())
    seen: list[int] = []
    with count_oracle_calls() as calls:
        two_tier = label_structures(
            _oracle({"potential": "fake:const"}),
            cells,
            references=_References(),
            on_result=lambda i, fields: seen.append(i),
        )
    assert sorted(seen) == [0, 1, 2]
    # three relaxations and three single points: one batch call per structure and tier
    assert calls.structures.count("LiF") == 6
    const = (-1.5 + -2.0) / 2  # eV/atom of fake:const (tests/oracle/conftest.py: Li -1.5, F -2.0)
    for first, second in zip(one_tier, two_tier, strict=True):
        assert first["refine"] is None
        assert first["status"] == "converged" and second["status"] == "converged"
        assert second["energy_per_atom"] == pytest.approx(const)
        assert second["corrected_energy_per_atom"] == pytest.approx(const)
        assert second["formation_energy_per_atom"] == pytest.approx(const + 1.0)
        # the structure is the first tier's relaxed one; its energy there is kept in the record
        assert second["relaxed_structure"] == first["relaxed_structure"]
        record = second["refine"]
        assert record["potential"] == "fake:const" and record["max_steps"] == 0
        assert record["first_energy_per_atom"] == pytest.approx(first["energy_per_atom"])
        assert record["energy_per_atom"] == pytest.approx(const)
        assert second["potential"] == "fake:lj"


@pytest.mark.usefixtures("fake_potentials")
def test_a_failing_second_tier_fails_the_label_with_its_reason(make_rocksalt: Rocksalt) -> None:
    out = label_structures(_oracle({"potential": "fake:nan"}), [make_rocksalt(4.6)], references=_References())
    assert out[0]["status"] == "failed"
    assert out[0]["reason"].startswith("refine (fake:nan): non-finite energy")
    assert out[0]["refine"]["status"] == "failed"


@pytest.mark.usefixtures("fake_potentials")
def test_a_failing_first_tier_is_not_refined(make_rocksalt: Rocksalt) -> None:
    cells = [make_rocksalt(4.6), make_rocksalt(4.6)]
    oracle = OracleConfig(
        relax=RelaxConfig(potential="fake:nan"),
        refine=RefineConfig(potential="fake:const"),
        energy_correction="none",
    )
    with count_oracle_calls() as calls:
        out = label_structures(oracle, cells, references=_References())
    assert [o["status"] for o in out] == ["failed", "failed"]
    assert all(o["refine"] is None for o in out)
    assert len(calls.structures) == 2  # the first tier only


@pytest.mark.usefixtures("fake_potentials")
def test_relax_refine_re_relaxes_with_the_second_potential(make_rocksalt: Rocksalt) -> None:
    # fake:lj relaxes the cell; a second fake:lj tier that re-relaxes starts from there and converges at once,
    # while its trajectory is appended to the first tier's
    cell = make_rocksalt(5.0)
    first = label_structures(_oracle(), [cell], references=_References())[0]
    both = label_structures(_oracle({"potential": "fake:lj", "max_steps": 50}), [cell], references=_References())[0]
    assert both["refine"]["max_steps"] == 50 and both["refine"]["status"] == "converged"
    assert both["energy_per_atom"] == pytest.approx(first["energy_per_atom"], abs=1e-3)
    assert len(both["energy_trajectory"]) > len(first["energy_trajectory"])
