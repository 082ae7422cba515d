"""The potential registry: names, errors, caching."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from battery_discovery.errors import ConfigError
from oracle.potentials import available_potentials, get_potential, parse_spec


def test_unknown_potential_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        get_potential("mace-mp")
    message = str(info.value)
    assert "mace-mp" in message
    assert "'chgnet'" in message and "matgl" in message
    assert "\n" not in message


def test_registry_has_chgnet_and_matgl() -> None:
    assert available_potentials()[:2] == ["chgnet", "matgl"]
    assert parse_spec("matgl:M3GNet-MP-2021.2.8-PES") == ("matgl", "M3GNet-MP-2021.2.8-PES")
    assert parse_spec(" CHGNet ") == ("chgnet", None)


def test_unknown_chgnet_checkpoint_is_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown CHGNet model 'nope'.*r2scan"):
        get_potential("chgnet:nope")


def test_matgl_missing_local_folder_fails_fast(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"missing model\.pt"):
        get_potential(f"matgl:{tmp_path / 'no-such-model'}")
    assert time.monotonic() - start < 1.0


def test_matgl_without_name_is_config_error() -> None:
    with pytest.raises(ConfigError, match="matgl:<"):
        get_potential("matgl")


@pytest.mark.slow
def test_chgnet_loads_once_with_versions() -> None:
    import chgnet

    first = get_potential("chgnet")
    start = time.monotonic()
    second = get_potential("chgnet")
    assert second is first
    assert time.monotonic() - start < 0.1
    assert first.name == "chgnet"
    assert first.version == f"chgnet {chgnet.__version__} / 0.3.0"
