"""benchmarks/store_scale.py on a small store: both servers, the same answers, its last line, its results file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAST_LINE = re.compile(r"n_docs=(\d+) insert_per_s=(\d+) p50_ms=([\d.]+) p95_ms=([\d.]+)")


@pytest.mark.slow
def test_store_scale_small(tmp_path: Path) -> None:
    servers = (
        "nx-27017,secantusdb"
        if shutil.which("secantusd-py") or Path(sys.executable).with_name("secantusd-py").exists()
        else "nx-27017"
    )
    out = tmp_path / "store_scale.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "store_scale.py"), "--n", "300", "--queries", "18"]
    cmd += ["--server", servers, "--home", str(tmp_path / "servers"), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    match = LAST_LINE.fullmatch(proc.stdout.strip().splitlines()[-1])
    assert match is not None and int(match.group(1)) == 300
    report = json.loads(out.read_text())
    assert set(report["servers"]) == set(servers.split(","))
    for server in report["servers"].values():
        assert server["n_queries_timed"] == 18 and server["insert_per_s"] > 0
        assert all(kind["n"] == 3 for kind in server["kinds"].values())
    if "disagreements" in report:  # the same seeded queries give the same ids in order and the same counts
        assert report["disagreements"] == []
