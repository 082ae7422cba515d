"""The potential registry: names, decorator registration, duplicates, errors, caching."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ase.calculators.calculator import Calculator

from core.errors import ConfigError
from core.registry import DuplicateRegistrationError
from oracle.potentials import (
    POTENTIALS,
    UNKNOWN,
    CHGNetPotential,
    MatGLPotential,
    Potential,
    available_potentials,
    file_sha256,
    files_sha256,
    get_potential,
    parse_spec,
    potential_identity,
    register_potential,
    unregister_potential,
)
from oracle.sevennet import SevenNetPotential


def test_unknown_potential_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        get_potential("mace-mp")
    message = str(info.value)
    assert "mace-mp" in message
    assert "'chgnet'" in message and "matgl" in message and "'sevennet'" in message
    assert "\n" not in message


def test_registry_has_chgnet_matgl_and_sevennet() -> None:
    assert {"chgnet", "matgl", "sevennet"} <= set(available_potentials())
    assert available_potentials() == sorted(available_potentials())
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
    assert first.checkpoint_sha256 == potential_identity("chgnet")["checkpoint_sha256"]
    assert get_potential("chgnet:0.3.0") is first  # one model per normalised spec


@pytest.mark.slow
def test_chgnet_stress_is_the_strain_derivative_of_the_energy() -> None:
    """ASE's convention: V * trace(stress) = dE/d(eps) under isotropic strain (finite differences).

    A reversed sign drives cell relaxations uphill; this guards the correction in CHGNetPotential.
    """
    import numpy as np
    from ase.build import bulk

    from oracle.potentials import get_potential

    calc = get_potential("chgnet").calculator()
    atoms = bulk("LiF", "rocksalt", a=3.9)  # compressed (relaxed ~4.05 Å)
    atoms.calc = calc
    analytic = atoms.get_volume() * float(np.trace(atoms.get_stress(voigt=False)))
    energies = []
    for eps in (-0.002, 0.002):
        a = atoms.copy()
        a.set_cell(atoms.cell * (1 + eps), scale_atoms=True)
        a.calc = calc
        energies.append(a.get_potential_energy())
    numeric = (energies[1] - energies[0]) / 0.004
    assert numeric < 0  # compressed: stretching lowers the energy
    assert analytic == pytest.approx(numeric, rel=0.05)


@pytest.mark.slow
def test_left_handed_cells_relax_downhill() -> None:
    """CHGNet's stress has the wrong sign on a left-handed cell; the oracle must make it right-handed.

    A compressed LiF rocksalt cell written on a left-handed lattice must expand, and its energy drop.
    """
    import numpy as np
    from pymatgen.core import Lattice, Structure

    from oracle.relax import RelaxConfig, relax_structure, right_handed

    right = Structure(Lattice.cubic(3.85), ["Li"] * 4 + ["F"] * 4, [
        [0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
        [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5],
    ])  # fmt: skip
    left = Structure(Lattice(-right.lattice.matrix), right.species, -right.frac_coords)
    assert np.linalg.det(left.lattice.matrix) < 0
    fixed = right_handed(left)
    assert np.linalg.det(fixed.lattice.matrix) > 0
    assert np.allclose(np.sort(fixed.cart_coords, axis=0), np.sort(left.cart_coords, axis=0))
    result = relax_structure(left, RelaxConfig(fmax=0.05, max_steps=100))
    assert result.status == "converged"
    assert result.volume_change > 0.02  # 3.85 Å is compressed: CHGNet's LiF is near 4.05 Å
    assert result.energy_per_atom < result.initial_energy_per_atom


class _Dummy(Potential):
    def __init__(self, arg: str | None = None) -> None:
        self.name = "dummy" if arg is None else f"dummy:{arg}"
        self.version = "dummy 1"

    def calculator(self) -> Calculator:
        raise NotImplementedError


def test_builtin_families_are_registered_by_decorator() -> None:
    assert POTENTIALS["chgnet"] is CHGNetPotential and POTENTIALS["matgl"] is MatGLPotential
    assert POTENTIALS["sevennet"] is SevenNetPotential
    assert "chgnet" in POTENTIALS and "mace" not in POTENTIALS
    assert sorted(POTENTIALS) == available_potentials()


def test_registering_a_family_twice_raises() -> None:
    with pytest.raises(DuplicateRegistrationError, match="chgnet"):

        @POTENTIALS.register("chgnet")
        class Shadow(_Dummy):
            pass

    with pytest.raises(DuplicateRegistrationError):
        register_potential("matgl", _Dummy)
    assert POTENTIALS["chgnet"] is CHGNetPotential and POTENTIALS["matgl"] is MatGLPotential


def test_plugin_family_by_decorator_then_overwrite_and_unregister() -> None:
    try:
        POTENTIALS.register("dummy")(_Dummy)
        first = get_potential("dummy:a")
        assert first.name == "dummy:a" and get_potential("dummy:a") is first  # cached
        with pytest.raises(DuplicateRegistrationError):
            register_potential("dummy", _Dummy)
        register_potential("dummy", _Dummy, overwrite=True)  # replaces, and forgets cached instances
        assert get_potential("dummy:a") is not first
    finally:
        unregister_potential("dummy")
    assert "dummy" not in POTENTIALS
    with pytest.raises(ConfigError, match="unknown potential 'dummy'"):
        get_potential("dummy")
    unregister_potential("dummy")  # unknown names are ignored


def test_chgnet_identity_hashes_its_wheel_checkpoint() -> None:
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("chgnet")
    assert spec is not None and spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations))) / "pretrained"
    for model in CHGNetPotential.MODELS:
        (checkpoint,) = (folder / model).glob("*.pth.tar")
        identity = potential_identity(f"chgnet:{model}")
        assert identity["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
        assert identity["version"].endswith(f"/ {model}")
    assert potential_identity("chgnet") == potential_identity("chgnet:0.3.0")
    assert potential_identity("chgnet")["potential"] == "chgnet"
    assert potential_identity("chgnet:r2scan")["potential"] == "chgnet:r2scan"
    with pytest.raises(ConfigError, match="unknown CHGNet model"):
        potential_identity("chgnet:nope")
    with pytest.raises(ConfigError, match="unknown potential 'mace'"):
        potential_identity("mace")


def test_families_without_a_checkpoint_have_an_unknown_identity(fake_potentials: None) -> None:
    assert potential_identity("fake:lj") == {"potential": "fake:lj", "version": UNKNOWN, "checkpoint_sha256": UNKNOWN}
    assert potential_identity("fake") == {"potential": "fake", "version": UNKNOWN, "checkpoint_sha256": UNKNOWN}
    loaded = get_potential("fake:lj")
    assert (loaded.name, loaded.version, loaded.checkpoint_sha256) == ("fake:lj", "fake 1.0", UNKNOWN)
    try:
        register_potential("plain", lambda arg: _Dummy(arg))  # a factory function, not a Potential subclass
        assert potential_identity("plain:x")["checkpoint_sha256"] == UNKNOWN
    finally:
        unregister_potential("plain")


def test_matgl_identity_hashes_the_model_folder(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("model.pt", "state.pt", "model.json"):
        (folder / name).write_text(f"content of {name}")
    identity = potential_identity(f"matgl:{folder}")
    assert identity["potential"] == f"matgl:{folder}"
    assert identity["version"].endswith("/ model")
    assert identity["checkpoint_sha256"] == files_sha256(
        [folder / "model.pt", folder / "state.pt", folder / "model.json"]
    )
    (folder / "state.pt").write_text("other weights")  # new weights, same constructor arguments
    assert potential_identity(f"matgl:{folder}")["checkpoint_sha256"] != identity["checkpoint_sha256"]
    with pytest.raises(ConfigError, match=r"missing model\.pt"):
        potential_identity(f"matgl:{tmp_path / 'nothing'}")
    with pytest.raises(ConfigError, match="matgl:<"):
        potential_identity("matgl")
    # a pretrained name is not pinned: "unknown", and nothing is looked up on the Hub
    start = time.monotonic()
    pretrained = potential_identity("matgl:M3GNet-MP-2021.2.8-PES")
    assert pretrained["potential"] == "matgl:M3GNet-MP-2021.2.8-PES"
    assert pretrained["checkpoint_sha256"] == UNKNOWN
    assert pretrained["version"].endswith("/ M3GNet-MP-2021.2.8-PES")
    assert time.monotonic() - start < 1.0


def test_matgl_cached_hub_files_are_found_without_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a loaded pretrained MatGL model records: the files in matgl's Hugging Face cache (~/.cache/matgl)."""
    from oracle.potentials import _matgl_hub_files

    monkeypatch.setenv("HOME", str(tmp_path))
    repo = tmp_path / ".cache" / "matgl" / "models--materialyze--Toy-PES"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert _matgl_hub_files("Toy-PES") is None  # nothing cached yet
    for name in ("model.pt", "state.pt", "model.json"):
        (snapshot / name).write_text(name)
    files = _matgl_hub_files("Toy-PES")
    assert files is not None and [f.name for f in files] == ["model.pt", "state.pt", "model.json"]
    assert _matgl_hub_files("Other-PES") is None


def test_file_hash_follows_the_file(tmp_path: Path) -> None:
    import hashlib
    import os

    path = tmp_path / "checkpoint.pth"
    path.write_bytes(b"weights v1")
    first = file_sha256(path)
    assert first == hashlib.sha256(b"weights v1").hexdigest()
    path.write_bytes(b"weights v2 longer")
    os.utime(path, ns=(1, 1))  # a new size alone must already miss the cache
    assert file_sha256(path) == hashlib.sha256(b"weights v2 longer").hexdigest()
