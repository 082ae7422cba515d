"""Matbench (Dunn et al. 2020) through matminer: ``matbench:mp_gap``, ``matbench:mp_e_form``, ...

The file is downloaded once with ``matminer.datasets.load_dataset`` (optional extra ``data``) into
``<raw>/matbench/matbench_<name>.json.gz`` and then parsed directly (pandas split-orient JSON with pymatgen
objects), so a cached or copied file loads without matminer.
"""

from __future__ import annotations

import gzip
import json
import re
import warnings
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from ingest.paths import raw_dir
from ingest.records import DatasetError, RawDataset, RawRecord
from ingest.sources.base import SourcePlan, first_line, parse_composition, progress_iter, to_float

SOURCE = "matbench"
# target column -> (property name, description with unit)
TARGETS: dict[str, dict[str, tuple[str, str]]] = {
    "matbench_mp_gap": {"gap pbe": ("gap_pbe", "band gap, PBE, Materials Project (eV)")},
    "matbench_mp_e_form": {"e_form": ("e_form", "formation energy per atom, Materials Project (eV/atom)")},
    "matbench_mp_is_metal": {"is_metal": ("is_metal", "1 if metallic (PBE), else 0 (dimensionless)")},
    "matbench_perovskites": {"e_form": ("e_form", "heat of formation of the 5-atom cell (eV per cell)")},
    "matbench_log_gvrh": {"log10(G_VRH)": ("log10_g_vrh", "log10 of the VRH shear modulus (log10 GPa)")},
    "matbench_log_kvrh": {"log10(K_VRH)": ("log10_k_vrh", "log10 of the VRH bulk modulus (log10 GPa)")},
    "matbench_dielectric": {"n": ("n", "refractive index (dimensionless)")},
    "matbench_jdft2d": {"exfoliation_en": ("exfoliation_en", "exfoliation energy (meV/atom)")},
    "matbench_phonons": {"last phdos peak": ("last_phdos_peak", "highest optical phonon DOS peak (cm^-1)")},
    "matbench_expt_gap": {"gap expt": ("gap_expt", "experimental band gap (eV)")},
    "matbench_expt_is_metal": {"is_metal": ("is_metal", "1 if metallic (experiment), else 0 (dimensionless)")},
    "matbench_glass": {"gfa": ("gfa", "1 if glass forming, else 0 (dimensionless)")},
    "matbench_steels": {"yield strength": ("yield_strength", "yield strength (MPa)")},
}
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "gap_pbe": (0.0, 30.0),
    "gap_expt": (0.0, 30.0),
    "e_form": (-20.0, 20.0),
}
MISSING_EXTRA = (
    "matbench needs the optional 'data' extra (matminer): pip install -c constraints.txt -e '.[data]' "
    "(offline, copy matbench_<name>.json.gz into the cache folder matbench/ instead)"
)


def dataset_name(arg: str) -> str:
    """``mp_gap`` or ``matbench_mp_gap`` -> ``matbench_mp_gap``."""
    name = arg.strip().lower()
    return name if name.startswith("matbench_") else f"matbench_{name}"


def raw_path(name: str, cache_dir: Path | None = None) -> Path:
    """Where the file of one Matbench data set is cached."""
    return raw_dir(SOURCE, cache_dir) / f"{name}.json.gz"


def fetch_with_matminer(name: str, folder: Path) -> None:
    """Download ``name`` into ``folder`` with matminer (which checks the file's sha256)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from matminer.datasets import load_dataset as matminer_load
    except ImportError:
        raise DatasetError(MISSING_EXTRA) from None
    folder.mkdir(parents=True, exist_ok=True)
    try:
        matminer_load(name, data_home=str(folder), download_if_missing=True)
    except ValueError as exc:  # unknown name
        raise DatasetError(f"matbench: {first_line(exc)}") from None
    except Exception as exc:  # network errors surface as many types
        raise DatasetError(
            f"cannot download {name} with matminer ({first_line(exc)}); offline, copy {name}.json.gz to {folder}"
        ) from None


def _label_name(column: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")


def read(path: Path, name: str, *, progress: bool = False) -> RawDataset:
    """Parse a Matbench/matminer json.gz (split orient: index, columns, data)."""
    try:
        with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as f:
            data: dict[str, Any] = json.load(f)
        columns, index, table = data["columns"], data["index"], data["data"]
    except Exception as exc:
        raise DatasetError(f"{path}: not a matminer data-set file ({first_line(exc)})") from None
    known = TARGETS.get(name, {})
    struct_col = "structure" if "structure" in columns else None
    comp_col = "composition" if "composition" in columns else None
    if struct_col is None and comp_col is None:
        raise DatasetError(f"{path}: no 'structure' or 'composition' column; has {columns}")
    targets = [c for c in columns if c not in (struct_col, comp_col)]
    props = {
        known.get(c, (_label_name(c), ""))[0]: known.get(c, ("", f"{c} (unit: see matminer metadata)"))[1]
        for c in targets
    }
    label_of = {c: known.get(c, (_label_name(c), ""))[0] for c in targets}
    rows: list[RawRecord] = []
    for idx, values in progress_iter(list(zip(index, table, strict=True)), f"parsing {name}", progress):
        cell = dict(zip(columns, values, strict=True))
        labels = {label_of[c]: to_float(cell[c]) for c in targets}
        rid = str(idx)
        if struct_col is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    structure = Structure.from_dict(cell[struct_col])
                rows.append(RawRecord(id=rid, structure=structure, labels=labels))
            except Exception as exc:
                reason = f"structure does not parse: {first_line(exc)}"
                rows.append(RawRecord(id=rid, labels=labels, error=("malformed_structure", reason)))
        else:
            comp_value = cell[comp_col]
            if isinstance(comp_value, dict):  # a pymatgen Composition as_dict
                comp_value = " ".join(f"{k}{v}" for k, v in comp_value.items() if not k.startswith("@"))
            comp, error = parse_composition(comp_value)
            rows.append(RawRecord(id=rid, composition=comp, labels=labels, error=error))
    return RawDataset(name=name, source=f"matbench:{name}", rows=rows, properties=props, bounds=dict(BOUNDS))


def plan(arg: str, cache_dir: Path | None = None) -> SourcePlan:
    """``matbench:mp_gap``: the cached file, downloaded with matminer on first use."""
    if not arg:
        raise DatasetError(f"matbench needs a data set name, e.g. matbench:mp_gap; known: {', '.join(TARGETS)}")
    name = dataset_name(arg)
    path = raw_path(name, cache_dir)
    if not path.is_file():
        fetch_with_matminer(name, path.parent)
        if not path.is_file():
            raise DatasetError(f"matminer did not leave {path}")
    return SourcePlan(name=name, files=[path], read=lambda progress: read(path, name, progress=progress))
