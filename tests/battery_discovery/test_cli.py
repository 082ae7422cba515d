"""The CLI: help that teaches, one-line errors with exit 2, query and status on a store."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest


def test_help_lists_commands(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli: Callable[..., int]
) -> None:
    assert cli("--help") == 0
    out = capsys.readouterr().out
    for command in ("run", "query", "status", "config", "store"):
        assert command in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "--rounds", "-2"), "invalid config value for rounds"),
        (("run", "--seeds", "/no/such.cif"), "neither a file"),
        (("run", "--strategy", "magic"), "acquisition.strategy"),
        (
            ("run", "--store-uri", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"),
            "cannot reach MongoDB",
        ),
        (("query", "--elements", "Li,Xx", "--store-uri", "mongomock://cli"), "unknown element 'Xx'"),
        (("query", "--sort", "colour", "--store-uri", "mongomock://cli"), "cannot sort by"),
        (("status", "--database", "../x", "--store-uri", "mongomock://cli"), "database name '../x'"),
        (("query", "--database", "a b", "--store-uri", "mongomock://cli"), "database name 'a b'"),
        (("benchmark", "--pool", "perov5:val", "--target", "ind_gap >>= 1"), "is not an expression"),
        (("benchmark", "--pool", "perov5:val", "--target", "a >= 1 and " * 500 + "a >= 1"), "at most 1000"),
        (("benchmark", "--pool", "/no/such/pool.csv", "--target", "ind_gap >= 1"), "neither a split"),
    ],
)
def test_user_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
    cli: Callable[..., int],
) -> None:
    assert cli(*args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("error:") and "\n" not in err and "Traceback" not in err


def test_malformed_seed_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, cli: Callable[..., int]
) -> None:
    bad = tmp_path / "bad.cif"
    bad.write_text("not a cif at all")
    assert cli("run", "--seeds", str(bad), "--store-uri", "mongomock://cli") == 2
    assert "bad.cif: cannot read a structure" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("_cell_length_a -5", "_cell_length_a = -5 Å: a cell length must be positive"),
        ("_cell_angle_beta 180", "between 0 and 180"),
    ],
)
def test_impossible_cif_cells_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cli: Callable[..., int], cell: str, message: str
) -> None:
    """pymatgen builds a positive cell from a = -5 Å; the declared cell is checked on the text."""
    lines = ["data_x", "_cell_length_a 4", "_cell_length_b 4", "_cell_length_c 4", "_cell_angle_alpha 90"]
    lines += ["_cell_angle_beta 90", "_cell_angle_gamma 90", "_symmetry_space_group_name_H-M 'P 1'", "loop_"]
    lines += ["_atom_site_label", "_atom_site_type_symbol", "_atom_site_fract_x", "_atom_site_fract_y"]
    lines += ["_atom_site_fract_z", "Li1 Li 0 0 0", "O1 O 0.5 0.5 0.5"]
    key = cell.split()[0]
    text = "\n".join(cell if line.startswith(key + " ") else line for line in lines) + "\n"
    path = tmp_path / "cell.cif"
    path.write_text(text)
    assert cli("run", "--seeds", str(path), "--store-uri", "mongomock://cli") == 2
    assert message in capsys.readouterr().err
    from ingest.sources.base import parse_structure_file

    structure, problem = parse_structure_file(path)
    assert structure is None and problem is not None and message in problem[1]


def test_config_prints_every_knob(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli: Callable[..., int]
) -> None:
    assert cli("config") == 0
    out = capsys.readouterr().out
    for key in ("rounds: 3", "strategy: ucb", "potential: chgnet", "store_uri: embedded", "n_members: 5"):
        assert key in out


def test_query_and_status_on_an_empty_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli: Callable[..., int]
) -> None:
    assert cli("query", "--store-uri", "mongomock://cli-empty") == 0
    assert "0 evaluated candidates, 0 predicted" in capsys.readouterr().out
    assert cli("status", "--store-uri", "mongomock://cli-empty") == 0
    assert "candidates 0" in capsys.readouterr().out


def test_query_where_filters_on_oracle_values_and_predictions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli: Callable[..., int]
) -> None:
    from pymatgen.core import Lattice, Structure

    from store import open_store
    from store.documents import CandidateDoc, EvaluationDoc, Provenance

    store = open_store("mongomock://cli-where", "battery_discovery")
    cell = Structure(Lattice.cubic(4.2), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    prov = Provenance(campaign="w", round=1, code_version="t")
    for cid, gap, e_hull in (("w-a", 6.0, 0.01), ("w-b", 1.0, 0.0), ("w-c", 5.0, 0.3)):
        cand = CandidateDoc.from_structure(cell, cid=cid, fingerprint=cid, provenance=prov, source="seed")
        store.insert_candidate(cand)
        store.put_evaluation(
            EvaluationDoc.from_relaxation(
                cand,
                {
                    "status": "converged",
                    "energy_per_atom": -4.0,
                    "formation_energy_per_atom": -3.0,
                    "energy_above_hull": e_hull,
                    "relaxed_structure": cell.as_dict(),
                    "properties": {"band_gap": {"mean": gap, "std": 0.2, "model": "m-v1"}},
                    "potential": "chgnet",
                    "potential_version": "x",
                    "fmax": 0.1,
                    "max_steps": 10,
                    "elapsed_s": 1.0,
                },
                oracle_key="k",
                provenance=prov,
            )
        )
    pending = CandidateDoc.from_structure(cell, cid="w-d", fingerprint="w-d", provenance=prov, source="substitution")
    store.insert_candidate(pending)
    store.set_predictions({"w-d": {"band_gap": {"mean": 4.0, "std": 1.0}}}, model_version="w-r0", round_index=1)
    uri = ("--store-uri", "mongomock://cli-where")
    out_csv, out_json, cif_dir = tmp_path / "q.csv", tmp_path / "q.json", tmp_path / "cifs"
    args = ("query", "--where", "band_gap >= 3 and e_above_hull <= 0.05", "--csv", str(out_csv), *uri)
    assert cli(*args, "--json-file", str(out_json), "--cifs", str(cif_dir)) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["id"] for r in rows] == ["w-a"] and float(rows[0]["band_gap_mean"]) == 6.0
    assert json.loads(out_json.read_text())[0]["id"] == "w-a" and (cif_dir / "w-a.cif").is_file()
    capsys.readouterr()
    assert cli("query", "--where", "band_gap >= 3", "--predicted", "--json", "--sort", "band_gap", *uri) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(g["id"], g["values_from"]) for g in got] == [("w-d", "predicted"), ("w-c", "oracle"), ("w-a", "oracle")]
    # raw operators and unknown names never reach the database
    assert cli("query", "--where", "{'$where': 1}", *uri) == 2
    assert cli("query", "--where", "colour >= 1", *uri) == 2
    assert "cannot filter on 'colour'" in capsys.readouterr().err


@pytest.mark.slow
def test_screen_relaxes_scores_and_keeps_bad_rows(tmp_path: Path, cli: Callable[..., int]) -> None:
    """A CSV of four structures: two real ones relaxed and scored against the MP phases, a malformed CIF and an
    impossible cell kept in place with their reasons."""
    from pymatgen.core import Lattice, Structure

    lif = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    import pymatgen.core

    lio = Structure.from_file(str(Path(pymatgen.core.__file__).parents[1] / "util/structures/Li2O.json"))
    huge = Structure(Lattice.cubic(1e9), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    path = tmp_path / "in.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "cif"])
        writer.writerow(["lif", lif.to(fmt="cif")])
        writer.writerow(["junk", "data_x\n_cell_length_a nope\n"])
        writer.writerow(["huge", huge.to(fmt="cif")])
        writer.writerow(["li2o", lio.to(fmt="cif")])
    out = tmp_path / "results.csv"
    args = ("screen", "--input", str(path), "--out", str(out), "--properties", "e_above_hull,stability_window")
    assert cli(*args) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == ["lif", "junk", "huge", "li2o"]
    assert [r["status"] for r in rows] == ["ok", "failed", "failed", "ok"]
    assert "Å³/atom" in rows[2]["reason"] and rows[1]["reason"]
    for r in (rows[0], rows[3]):
        assert float(r["formation_energy_per_atom"]) < -1.5 and r["e_above_hull"] != ""
        assert float(r["stability_window_low_V"]) <= float(r["stability_window_high_V"])
    assert rows[0]["band_gap_mean"] == "" and rows[0]["average_voltage"] == ""  # not asked for


def test_a_command_that_opened_the_store_exits_without_resource_warnings(session_home: Path) -> None:
    """`status` opens the embedded store: its client is closed at exit (Python warned of an unclosed MongoClient)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "BATTERY_DISCOVERY_HOME": str(session_home), "PYTHONWARNINGS": "default"}
    code = "import sys; from battery_discovery.cli import main; sys.argv = ['battery-discovery', 'status']; main()"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 2), done.stderr[-2000:]
    assert "ResourceWarning" not in done.stderr, done.stderr[-2000:]
    assert "MongoClient" not in done.stderr
