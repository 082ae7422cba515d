"""The package installs: a wheel built from the checkout, installed (not editable) into a fresh virtual environment,
holds every module and data file of the package folders and runs its command line without the checkout.

Offline: the wheel is built with this environment's setuptools (no build isolation, no index) and installed
without dependencies; the fresh environment sees this environment's site-packages through a plain ``.pth`` line
(not processed as a site directory, so the editable install's ``.pth`` that puts the checkout on ``sys.path`` is
not), and every import is checked to come from the fresh environment's own site-packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: Top-level folders of the checkout that are not installed.
NOT_PACKAGES = frozenset({"tests", "benchmarks", "docs", "var", "test-artifacts", "build", "dist"})
#: Not copied into the build tree: state, outputs, build leftovers (tests, benchmarks and docs are, so that the
#: wheel is checked to leave them out).
NOT_COPIED = frozenset({"var", "test-artifacts", "build", "dist"})
SKIPPED = frozenset({"__pycache__"})

IMPORT_ALL = """
import importlib, json, sys, sysconfig
from pathlib import Path

site = Path(sysconfig.get_paths()["purelib"]).resolve()
out = {"failed": {}, "outside": {}}
for name in json.loads(sys.argv[1]):
    try:
        module = importlib.import_module(name)
    except BaseException as exc:
        out["failed"][name] = f"{type(exc).__name__}: {exc}"
        continue
    where = [module.__file__] if getattr(module, "__file__", None) else list(getattr(module, "__path__", []))
    if not where or not all(Path(p).resolve().is_relative_to(site) for p in where):
        out["outside"][name] = [str(p) for p in where]

from acquisition.config import preset_names
from core import paths
from dashboard import vendor

out["project_root"] = None if paths.project_root() is None else str(paths.project_root())
out["data_home"] = str(paths.data_home())
out["presets"] = preset_names()
out["vendor_missing"] = vendor.missing()
print(json.dumps(out))
"""


def _package_dirs() -> list[Path]:
    """Top-level folders of the checkout holding Python sources, except tests, benchmarks, docs and state."""
    return sorted(
        d
        for d in ROOT.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and d.name not in NOT_PACKAGES
        and not d.name.endswith(".egg-info")
        and any(d.rglob("*.py"))
    )


def _package_files() -> list[str]:
    """Every file under the package folders (POSIX paths relative to the checkout); bytecode and hidden files
    (editor swap files and the like) left out."""
    return sorted(
        p.relative_to(ROOT).as_posix()
        for d in _package_dirs()
        for p in d.rglob("*")
        if p.is_file()
        and not SKIPPED.intersection(p.relative_to(ROOT).parts)
        and not p.name.startswith(".")
        and p.suffix not in (".pyc", ".pyo")
    )


def _modules(paths: list[str]) -> set[str]:
    """Dotted names of the ``.py`` files among POSIX paths, and of every folder holding them (``loop`` is a
    namespace package, without ``__init__.py``: importable all the same)."""
    out: set[str] = set()
    for path in paths:
        if path.endswith(".py"):
            parts = path.removesuffix(".py").split("/")
            out.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
            out.update(".".join(parts[:k]) for k in range(1, len(parts)))
    return out


def _copy_checkout(dest: Path) -> None:
    """The checkout without its state, caches and build leftovers (a stale ``build/lib`` would hide a bug)."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == ROOT
        return {
            n
            for n in names
            if n in SKIPPED
            or n.endswith((".pyc", ".pyo"))
            or (top and (n.startswith(".") or n in NOT_COPIED or n.endswith(".egg-info")))
        }

    shutil.copytree(ROOT, dest, ignore=ignore)


def _run(
    cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{cmd[:4]} -> {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def test_wheel_installs_and_runs_without_the_checkout(tmp_path: Path) -> None:
    files = _package_files()
    modules = _modules(files)
    data = {f for f in files if not f.endswith(".py")}

    # Build the wheel offline from a clean copy of the checkout.
    src, wheels = tmp_path / "src", tmp_path / "wheels"
    _copy_checkout(src)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", str(wheels), str(src)])
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if ".dist-info/" not in n]
    in_wheel = _modules(names)
    missing = sorted(modules - in_wheel)
    assert missing == [], f"{len(missing)} of {len(modules)} modules missing from the wheel: {', '.join(missing)}"
    missing = sorted(data - set(names))
    assert missing == [], f"data files missing from the wheel: {', '.join(missing)}"
    top_level = {n.split("/", 1)[0] for n in names}
    assert top_level == {d.name for d in _package_dirs()}, "the wheel holds other top-level folders"

    # A fresh environment: the wheel (not editable), dependencies seen through a plain path line.
    venv, elsewhere, home = tmp_path / "venv", tmp_path / "elsewhere", tmp_path / "home"
    elsewhere.mkdir()
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([*pip, "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)])
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "_checkout_venv_dependencies.pth").write_text("".join(f"{p}\n" for p in deps))
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"}}
    env.update(
        HF_HUB_OFFLINE="1",
        BATTERY_DISCOVERY_HOME=str(home),
        PREFECT_HOME=str(tmp_path / "prefect"),
        PYTHONNOUSERSITE="1",
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        COLUMNS="200",
        NO_COLOR="1",
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    )

    # Every module imports, from the fresh environment's site-packages; the package knows it is not a checkout.
    result = _run([str(python), "-c", IMPORT_ALL, json.dumps(sorted(in_wheel))], cwd=elsewhere, env=env)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}
    assert report["outside"] == {}, f"imported from outside {site}"
    assert report["project_root"] is None
    assert Path(report["data_home"]) == home.resolve()
    assert report["presets"] == sorted(p.stem for p in (ROOT / "acquisition" / "presets").glob("*.yaml"))
    assert report["presets"] != []
    # The vendored stylesheets (`python -m dashboard.vendor`, not in git) are installed when the checkout has them.
    vendored = ROOT / "dashboard" / "assets" / "vendor"
    assert [name for name in report["vendor_missing"] if (vendored / name).is_file()] == []

    # The console script of the fresh environment.
    cli = str(venv / "bin" / "battery-discovery")
    help_text = _run([cli, "--help"], cwd=elsewhere, env=env).stdout
    assert "Usage" in help_text and "battery-discovery" in help_text
    assert all(command in help_text for command in ("run", "config", "status", "store", "dashboard"))
    config = yaml.safe_load(_run([cli, "config"], cwd=elsewhere, env=env).stdout)
    assert isinstance(config, dict)
    assert config["campaign"] == "default" and "acquisition" in config
    assert not (elsewhere / "var").exists() and not any(elsewhere.iterdir()), "wrote into the working directory"
