"""The benchmark scripts start and explain themselves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


SCRIPTS = sorted(p.name for p in (REPO / "benchmarks").glob("*.py"))


def test_every_script_is_checked() -> None:
    assert {"round.py", "oracle.py", "property_models.py", "same_picks.py", "hull_check.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout
