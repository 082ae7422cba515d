"""Fuzz: hundreds of generated malformed CIFs through ``battery-discovery screen`` and malformed configs through the
config loader and ``battery-discovery run -c BAD.yaml``, from a fixed seed. Zero tracebacks: every CIF gets its row
with ``status=failed`` and a one-line reason (none reaches a relaxation), every config one ``error:`` line and exit
2 before the store or Prefect is touched."""

from __future__ import annotations

import copy
import csv
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.errors import ConfigError
from loop.config import LoopConfig
from loop.plan import load_config

SEED = 20240611
N_CIFS = 320
N_CONFIGS = 320

GOOD_CELL = {"a": 4.03, "b": 4.03, "c": 4.03, "alpha": 90.0, "beta": 90.0, "gamma": 90.0}
GOOD_SITES = [("Li", 0.0, 0.0, 0.0, 1.0), ("F", 0.5, 0.5, 0.5, 1.0)]


def _cif(cell: dict[str, Any], sites: list[tuple[Any, ...]], group: str = "P 1") -> str:
    text = f"data_fuzz\n_symmetry_space_group_name_H-M '{group}'\n"
    for name in ("a", "b", "c"):
        text += f"_cell_length_{name} {cell[name]}\n"
    for name in ("alpha", "beta", "gamma"):
        text += f"_cell_angle_{name} {cell[name]}\n"
    text += "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
    text += "_atom_site_fract_z\n_atom_site_occupancy\n"
    return text + "".join(f"{s}{k} {s} {x} {y} {z} {o}\n" for k, (s, x, y, z, o) in enumerate(sites))


def _bad_cell(rng: random.Random) -> dict[str, Any]:
    cell = dict(GOOD_CELL)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(list(cell))
        if key in ("a", "b", "c"):
            cell[key] = rng.choice(["nan", "inf", "-inf", "1e9", "-5.0", "0", "0.0", "1e-9", "1e400", "?", "abc", "-0"])
        else:
            cell[key] = rng.choice(["0", "180", "-90", "360", "nan", "inf", "?", "1e9"])
    return cell


def _malformed_cif(rng: random.Random) -> str:
    """One CIF (or not even that) that no crystal matches: each kind is a different way to be wrong."""
    kind = rng.randrange(12)
    if kind == 0:  # impossible lattice parameters
        return _cif(_bad_cell(rng), GOOD_SITES)
    if kind == 1:  # zero or tiny volume: flat angles, or a 1e9 x 1e-9 sliver
        cell = {**GOOD_CELL, **rng.choice([{"alpha": 120, "beta": 120, "gamma": 120}, {"gamma": 179.9999}])}
        if rng.random() < 0.5:
            cell = {**GOOD_CELL, "a": 1e9, "b": rng.choice([1e-9, 1e-6, 1e-3])}
        return _cif(cell, GOOD_SITES)
    if kind == 2:  # unknown or unsupported species
        species = rng.choice(["Xx", "Qq", "Og", "Uuo", "X", "Zz9", "Ab"])
        return _cif(GOOD_CELL, [(species, 0.0, 0.0, 0.0, 1.0), ("F", 0.5, 0.5, 0.5, 1.0)])
    if kind == 3:  # partial or impossible occupancy
        occupancy = rng.choice([0.5, 0.25, 0.999, -1, 0, "nan", "inf", 2.0, "abc"])
        return _cif(GOOD_CELL, [("Li", 0.0, 0.0, 0.0, occupancy), ("F", 0.5, 0.5, 0.5, 1.0)])
    if kind == 4:  # overlapping atoms (the same or nearly the same position, across the boundary too)
        dx = rng.choice([0.0, 0.01, 0.05, 0.99, 0.999])
        return _cif(GOOD_CELL, [("Li", 0.0, 0.0, 0.0, 1.0), ("F", dx, 0.0, 0.0, 1.0)])
    if kind == 5:  # implausible density: a huge cell for two atoms
        scale = rng.choice([1e3, 1e5, 1e9])
        return _cif({**GOOD_CELL, "a": scale, "b": scale, "c": scale}, GOOD_SITES)
    if kind == 6:  # non-finite coordinates
        return _cif(GOOD_CELL, [("Li", rng.choice(["nan", "inf", "-inf", "?"]), 0, 0, 1.0), ("F", 0.5, 0.5, 0.5, 1)])
    if kind == 7:  # no sites at all
        return _cif(GOOD_CELL, [])
    if kind == 8:  # binary junk (read as text with replacement characters)
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))).decode("latin-1")
    if kind == 9:  # an HTML error page saved as .cif
        return rng.choice(["<html><body>404 Not Found</body></html>", "<!DOCTYPE html><title>502</title>", ""])
    if kind == 10:  # a valid CIF cut short, or with its lines shuffled
        lines = _cif(GOOD_CELL, GOOD_SITES).splitlines()
        if rng.random() < 0.5:
            return "\n".join(lines[: rng.randint(1, 8)])
        rng.shuffle(lines)
        return "\n".join(lines)
    return _cif(_bad_cell(rng), [(rng.choice(["Li", "Xx"]), "nan", 0, 0, rng.choice([1, -1, "nan"]))])  # a mixture


@pytest.fixture
def no_relaxation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any structure reaches a relaxation or the phase data."""
    import loop.screening

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a malformed structure reached relaxation")

    monkeypatch.setattr(loop.screening, "_relax", refuse)
    monkeypatch.setattr(loop.screening, "_phase_set", refuse)


def _assert_no_traceback(err: str) -> None:
    assert "Traceback" not in err and "Error:" not in err.replace("error:", ""), err[-2000:]


def test_malformed_cifs_each_get_a_failed_row_with_a_reason(
    tmp_path: Path, cli: Callable[..., int], capsys: pytest.CaptureFixture[str], no_relaxation: None
) -> None:
    rng = random.Random(SEED)
    folder = tmp_path / "cifs"
    folder.mkdir()
    texts = [_malformed_cif(rng) for _ in range(N_CIFS)]
    for k, text in enumerate(texts):
        (folder / f"f{k:03d}.cif").write_text(text, errors="surrogateescape")
    (folder / "f999.cif").write_bytes(b"\xff\xfe\x00\x00 not utf-8 \xc3\x28")  # invalid UTF-8 on disk
    out = tmp_path / "results.csv"
    args = ("--out", str(out), "--properties", "e_above_hull,stability_window")
    assert cli("screen", "--input", str(folder), *args) == 1  # every row failed: exit 1, the CSV written
    _assert_no_traceback(capsys.readouterr().err)
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == [f"f{k:03d}" for k in range(N_CIFS)] + ["f999"]
    bad = [(r["id"], r["status"], r["reason"]) for r in rows if r["status"] != "failed" or not r["reason"].strip()]
    assert bad == []
    assert all("\n" not in r["reason"] for r in rows)

    # the same texts as a CSV with a cif column (the other input form of screen and data load)
    table = tmp_path / "in.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "cif"])
        writer.writerows([f"r{k}", text] for k, text in enumerate(texts))
    assert cli("screen", "--input", str(table), *args) == 1
    _assert_no_traceback(capsys.readouterr().err)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == N_CIFS and all(r["status"] == "failed" and r["reason"].strip() for r in rows)


#: (path, value) pairs each of which makes the default config invalid.
BAD_VALUES: list[tuple[tuple[str, ...], Any]] = [
    (("rounds",), -1),
    (("rounds",), math.nan),
    (("rounds",), "three"),
    (("rounds",), 10**30),
    (("rounds",), 1e400),
    (("rounds",), [1]),
    (("rounds",), None),
    (("batch_size",), 0),
    (("batch_size",), -(2**63)),
    (("candidates_per_round",), {"$gt": 0}),
    (("campaign",), ""),
    (("campaign",), "../x"),
    (("campaign",), {"$ne": 1}),
    (("database",), "a b"),
    (("database",), "x" * 500),
    (("seeds",), []),
    (("seeds",), [[1]]),
    (("source",), "nowhere"),
    (("labeler",), "magic"),
    (("targets",), ["x", "x"]),
    (("properties",), ["band_gap", "band_gap"]),
    (("acquisition", "beta"), math.nan),
    (("acquisition", "beta"), -1),
    (("acquisition", "strategy"), "magic"),
    (("acquisition", "num_samples"), 0),
    (("acquisition", "objectives"), [{"name": "e_above_hull", "direction": "min", "high": math.nan}]),
    (("acquisition", "constraints"), [{"name": "e_above_hull", "op": "=<", "value": 1}]),
    (("surrogate", "learning_rate"), math.inf),
    (("surrogate", "learning_rate"), -1.0),
    (("oracle", "md", "min_length"), math.inf),
    (("oracle", "relax", "fmax"), math.nan),
    (("replay", "target"), "ind_gap >>= 1"),
    (("replay", "target"), "ind_gap >= " + "9" * 400),
    (("replay", "target"), "a >= 1 and " * 200 + "a >= 1"),
    (("runner", "kind"), "k8s"),
    (("runner", "dask_workers"), 10**9),
    (("runtime", "num_threads"), 0),
    (("roundz",), 3),
    (("acquisition", "betta"), 1.0),
    (("oracle", "relax", "nope"), True),
]


def _malformed_config(rng: random.Random, base: dict[str, Any]) -> bytes:
    """One config file the loader must refuse: an invalid value (plus junk), or a broken file."""
    kind = rng.randrange(10)
    if kind <= 5:
        doc = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            path, value = rng.choice(BAD_VALUES)
            target = doc
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = value
        return yaml.safe_dump(doc).encode()
    if kind == 6:  # not a mapping at the top level
        return yaml.safe_dump(rng.choice([[1, 2], "rounds", 3, [{"rounds": 1}], True])).encode()
    if kind == 7:  # not UTF-8 / binary
        return b"\xff\xfe" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    if kind == 8:  # broken YAML syntax or unsafe tags
        return rng.choice(
            [
                b"rounds: [1, 2\n",
                b"rounds: 1\n  batch_size: 2\n\t- x",
                b"rounds: !!python/object/apply:os.system ['true']\n",
                b"a: " + b"[" * 3000,
                b"a: " + b"[" * 1000 + b"]" * 1000,
                b"{{{{",
                b"rounds: 1\nrounds: *nope\n",
                b"? [1, 2]\n: 3\n",
            ]
        )
    text = yaml.safe_dump({"campaign": "ok", "rounds": 1})  # valid YAML with an unknown key mixed in
    return (text + rng.choice(["colour: red\n", "'': 1\n", "'\\n': 1\n", "null: 1\n", "1: 2\n"])).encode()


def test_malformed_configs_each_fail_in_one_line(
    tmp_path: Path, cli: Callable[..., int], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(SEED)
    base = LoopConfig().model_dump(mode="json")
    files = []
    for k in range(N_CONFIGS):
        path = tmp_path / f"c{k:03d}.yaml"
        path.write_bytes(_malformed_config(rng, base))
        files.append(path)
    for path in files:
        with pytest.raises(ConfigError) as info:
            load_config(path)
        message = str(info.value)
        assert message and "\n" not in message and "validation error" not in message, (path.read_bytes(), message)

    import battery_discovery.cli
    import store

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a malformed config reached the store or Prefect")

    monkeypatch.setattr(battery_discovery.cli, "_quiet_prefect_env", never)
    monkeypatch.setattr(store, "open_store", never)
    for path in files[:: N_CONFIGS // 8]:  # a few through the real command line
        assert cli("run", "-c", str(path)) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
