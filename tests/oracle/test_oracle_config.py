"""OracleConfig: a RelaxConfig held as a field, and a key that changes with every result-changing setting."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from oracle.config import NOT_IN_KEY, OracleConfig, RefineConfig
from oracle.md import MDConfig
from oracle.relax import RelaxConfig

#: The key of the default oracle, pinned: a changed key re-labels every stored result, so it may change only
#: on purpose (a new setting that can change a result, or a changed default), never as a side effect.
DEFAULT_KEY = "chgnet+sevennet:7net-l3i5|c2868a4b5406"


def _with(relax: dict[str, Any] | None = None, **fields: Any) -> OracleConfig:
    return OracleConfig(relax=RelaxConfig(**(relax or {})), **fields)


def test_key_is_a_readable_prefix_and_a_short_hash() -> None:
    assert re.fullmatch(r"chgnet\+sevennet:7net-l3i5\|[0-9a-f]{12}", DEFAULT_KEY)
    assert _with({"potential": "chgnet:r2scan"}).key().startswith("chgnet:r2scan+sevennet:7net-l3i5|")
    assert _with(refine=RefineConfig(potential=None)).key().startswith("chgnet|")


def test_key_is_the_same_for_the_same_values() -> None:
    assert OracleConfig().key() == DEFAULT_KEY
    assert _with({"fmax": 0.05}, relax_seeds=True).key() == _with({"fmax": 0.05}, relax_seeds=True).key()
    # field order (as in a YAML file) never matters
    forward = OracleConfig.model_validate({"relax_seeds": True, "relax": {"fmax": 0.05, "max_steps": 50}})
    backward = OracleConfig.model_validate({"relax": {"max_steps": 50, "fmax": 0.05}, "relax_seeds": True})
    assert forward.key() == backward.key()
    assert OracleConfig.model_validate(forward.model_dump()).key() == forward.key()


@pytest.mark.parametrize(
    "changed",
    [
        _with({"max_force_abort": 20.0}),
        _with({"max_volume_change": 0.3}),
        _with({"min_distance": 0.7}),
        _with({"timeout_s": 60.0}),
        _with({"fmax": 0.05}),
        _with({"max_steps": 100}),
        _with({"relax_cell": False}),
        _with({"optimizer": "BFGS"}),
        _with({"potential": "chgnet:0.2.0"}),
        _with(relax_seeds=True),
        _with(reference_source="ase"),
        _with(energy_correction="none"),
        _with(competing_phases="off"),
        _with(refine=RefineConfig(potential=None)),
        _with(refine=RefineConfig(potential="chgnet:0.2.0")),
        _with(refine=RefineConfig(potential="chgnet:0.2.0", max_steps=20)),
    ],
    ids=lambda c: ",".join(f"{k}={v}" for k, v in _diff(c).items()),
)
def test_every_result_changing_setting_changes_the_key(changed: OracleConfig) -> None:
    assert changed.key() != DEFAULT_KEY


def _diff(config: OracleConfig) -> dict[str, Any]:
    default = OracleConfig().model_dump()
    dumped = config.model_dump()
    out = {f"relax.{k}": v for k, v in dumped["relax"].items() if default["relax"][k] != v}
    out.update({k: v for k, v in dumped.items() if k != "relax" and default[k] != v})
    out.update({f"refine.{k}": v for k, v in dumped["refine"].items() if default["refine"][k] != v})
    return out


def test_batch_size_md_and_reference_phases_do_not_change_the_key() -> None:
    assert frozenset({"batch_size", "md", "reference_phases", "electrode", "completion"}) == NOT_IN_KEY
    assert _with(batch_size=1).key() == _with(batch_size=64).key() == DEFAULT_KEY
    assert _with(md=MDConfig(top_k=3)).key() == DEFAULT_KEY
    # the hull is recomputed from every label each round: the phases in it do not define a relaxation
    assert _with(reference_phases=("mp_20",)).key() == _with(reference_phases=()).key() == DEFAULT_KEY
    assert _with(completion={"max_structures": 0}).key() == DEFAULT_KEY  # computed phases: cached by settings


def test_composed_layout_rejects_the_old_flat_fields() -> None:
    config = OracleConfig.model_validate({"relax": {"fmax": 0.05}, "batch_size": 4})
    assert config.relax.fmax == 0.05 and config.relax.potential == "chgnet" and config.batch_size == 4
    for flat in ({"fmax": 0.05}, {"potential": "chgnet"}, {"num_threads": 2}):
        with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
            OracleConfig.model_validate(flat)
    with pytest.raises(ValidationError):
        config.batch_size = 2  # frozen


def test_unknown_potential_family_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"unknown potential 'mace'; registered: .*chgnet"):
        _with({"potential": "mace:medium"})


def test_relax_config_is_a_single_point_for_seeds_unless_relax_seeds() -> None:
    config = _with({"fmax": 0.05, "max_steps": 80})
    assert config.relax_config(seeds=False) is config.relax
    seed = config.relax_config(seeds=True)
    assert seed.max_steps == 0 and seed.model_dump(exclude={"max_steps"}) == config.relax.model_dump(
        exclude={"max_steps"}
    )
    relaxing = _with({"max_steps": 80}, relax_seeds=True)
    assert relaxing.relax_config(seeds=True) is relaxing.relax


def test_the_key_follows_the_checkpoint_file_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same spec, other weights (a new wheel): never the same key, so stored labels are not reused."""
    import oracle.potentials as potentials

    real = potentials.potential_identity

    def other_checkpoint(spec: str) -> dict[str, str]:
        return {**real(spec), "checkpoint_sha256": "0" * 64}

    monkeypatch.setattr(potentials, "potential_identity", other_checkpoint)
    assert OracleConfig().key() != DEFAULT_KEY
    assert OracleConfig().key().startswith("chgnet+sevennet:7net-l3i5|")
