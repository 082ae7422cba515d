"""``battery-discovery generate``: lists generators, writes CIFs and generated.csv, refuses bad input in one line."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pymatgen.core import Structure

from generation.learned import LearnedConfig, register_generator, train_generator


@pytest.fixture
def registry(tmp_path: Path, shared_data: Path) -> Iterator[str]:
    """A mongomock store holding a tiny registered Wyckoff transformer (trained for 5 steps)."""
    from generation.data import training_rows
    from store import open_store
    from store.connection import close_all

    uri = "mongomock://generate-cli"
    gen = train_generator(
        training_rows(("mp_20",))[:200], LearnedConfig(d_model=32, n_layers=1, n_heads=2, max_steps=30)
    )
    register_generator(open_store(uri, "battery_discovery"), "wyckoff-transformer", gen.save(tmp_path / "g"), gen)
    yield uri
    close_all()


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "generated.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_list_prints_one_generator_a_line(capsys: pytest.CaptureFixture[str], cli: Callable[..., int]) -> None:
    assert cli("generate", "--list") == 0
    names = capsys.readouterr().out.split()
    assert {"substitution", "ion-exchange", "pyxtal", "learned"} <= set(names)


def test_ion_exchange_of_lifepo4_writes_nafepo4(tmp_path: Path, cli: Callable[..., int]) -> None:
    out = tmp_path / "ie"
    assert (
        cli("generate", "--generator", "ion-exchange", "--parents", "pymatgen:LiFePO4", "--n", "5", "--out", str(out))
        == 0
    )
    rows = _rows(out)
    assert [r["formula"] for r in rows] == ["NaFePO4"]
    row = rows[0]
    assert row["generator"] == "ion-exchange" and row["passed_filters"] == "True" and row["reason"] == ""
    assert row["parents"] == "pymatgen:LiFePO4" and '"Li+": "Na+"' in row["parameters"]
    assert Structure.from_file(out / row["file"]).composition.reduced_formula == "NaFePO4"


def test_pyxtal_with_elements_and_seed_is_reproducible(tmp_path: Path, cli: Callable[..., int]) -> None:
    args = (
        "generate",
        "--generator",
        "pyxtal",
        "--n",
        "6",
        "--elements",
        "Li,Mg,O,S,Cl",
        "--require",
        "Li",
        "--seed",
        "2",
    )
    assert cli(*args, "--out", str(tmp_path / "a")) == 0
    assert cli(*args, "--out", str(tmp_path / "b")) == 0
    a, b = _rows(tmp_path / "a"), _rows(tmp_path / "b")
    assert [r["formula"] for r in a] == [r["formula"] for r in b] and len(a) >= 4
    for r in a:
        assert "Li" in Structure.from_file(tmp_path / "a" / r["file"]).symbol_set
        assert r["passed_filters"] in ("True", "False") and (r["passed_filters"] == "True") == (r["reason"] == "")


def test_learned_with_a_condition_uses_the_registered_model(
    tmp_path: Path, registry: str, cli: Callable[..., int]
) -> None:
    out = tmp_path / "learned"
    code = cli(
        "generate", "--generator", "learned", "--n", "8", "--set", "max_sites=10", "--set", "charge_balance=false",
        "--require", "", "--condition", "band_gap >= 3", "--out", str(out), "--store-uri", registry,
    )  # fmt: skip
    assert code == 0
    rows = _rows(out)
    assert rows and all(r["version"] == "wyckoff-transformer-v1" and r["condition"] == "band_gap >= 3" for r in rows)
    for r in rows:
        Structure.from_file(out / r["file"])  # every written CIF parses


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--generator", "dreams"), "unknown generator 'dreams'"),
        (("--generator", "pyxtal", "--elements", "Li,Qq"), "unknown element 'Qq'"),
        (("--generator", "learned", "--condition", "band_gap >>= 3"), "--condition"),
        (("--generator", "pyxtal", "--condition", "band_gap >= 3"), "cannot be conditioned"),
        (("--generator", "pyxtal", "--set", "max_sites"), "KEY=VALUE"),
        (("--generator", "pyxtal", "--set", "colour=red"), "colour"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: tuple[str, ...], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], cli: Callable[..., int]
) -> None:
    assert cli("generate", *args, "--n", "2", "--out", str(tmp_path / "x"), "--store-uri", "mongomock://bad") == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) <= 2
