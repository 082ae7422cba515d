"""Local files: a CSV with a CIF column, a folder of structure files, an extended-XYZ file."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from ingest.records import DatasetError, RawDataset, RawRecord
from ingest.sources.base import (
    SourcePlan,
    first_line,
    parse_composition,
    parse_structure_file,
    parse_structure_text,
    progress_iter,
    safe_name,
    to_float,
)

CIF_COLUMNS = ("cif", "cif_string", "structure_cif", "structure")
ID_COLUMNS = ("id", "material_id", "mp_id", "ID", "name")
FORMULA_COLUMNS = ("formula", "composition", "reduced_formula", "pretty_formula")
IGNORED_COLUMNS = ("Unnamed: 0", "index")
STRUCTURE_SUFFIXES = (".cif", ".json", ".vasp", ".poscar")
LABELS_FILE = "labels.csv"


def _unit_unknown(name: str, where: str) -> str:
    return f"{name} from {where} (unit not stated by the source)"


def _pick(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[c.lower()] for c in candidates if c.lower() in lower), None)


def read_cif_csv(
    path: Path,
    *,
    name: str,
    source: str,
    id_column: str | None = None,
    label_columns: list[str] | None = None,
    properties: dict[str, str] | None = None,
    bounds: dict[str, tuple[float | None, float | None]] | None = None,
    meta_columns: list[str] | None = None,
    progress: bool = False,
) -> RawDataset:
    """Rows of a CSV with a CIF column (or only a formula column); numeric columns are labels by default."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable CSV ({first_line(exc)})") from None
    columns = [str(c) for c in df.columns]
    cif_col = _pick(columns, CIF_COLUMNS)
    formula_col = _pick(columns, FORMULA_COLUMNS)
    if cif_col is None and formula_col is None:
        raise DatasetError(f"{path}: no CIF column ({', '.join(CIF_COLUMNS)}) and no formula column; has {columns}")
    id_col = id_column if id_column in columns else _pick(columns, ID_COLUMNS)
    if id_col is not None and not df[id_col].astype(str).is_unique:
        id_col = None  # not an id: fall back to the row index
    if label_columns is None:
        skip = {cif_col, formula_col, id_col, *IGNORED_COLUMNS}
        label_columns = [c for c in columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]
    missing = [c for c in label_columns if c not in columns]
    if missing:
        raise DatasetError(f"{path}: missing label column(s) {', '.join(missing)}; has {', '.join(columns)}")
    props = {c: (properties or {}).get(c) or _unit_unknown(c, path.name) for c in label_columns}
    rows: list[RawRecord] = []
    records = df.to_dict("records")
    for i, rec in enumerate(progress_iter(records, f"parsing {path.name}", progress)):
        rid = str(rec[id_col]) if id_col is not None else str(i)
        labels = {c: to_float(rec[c]) for c in label_columns}
        meta = {c: rec[c] for c in meta_columns or [] if c in rec}
        if cif_col is not None:
            structure, error = parse_structure_text(rec[cif_col] if isinstance(rec[cif_col], str) else "", "cif")
            rows.append(RawRecord(id=rid, structure=structure, labels=labels, error=error, meta=meta))
        else:
            comp, error = parse_composition(rec[formula_col])
            rows.append(RawRecord(id=rid, composition=comp, labels=labels, error=error, meta=meta))
    return RawDataset(name=name, source=source, rows=rows, properties=props, bounds=dict(bounds or {}))


def plan_csv(arg: str, cache_dir: Path | None = None) -> SourcePlan:
    """``csv:PATH``: a CSV with a CIF column (``cif``/``structure``) or a formula column; numeric columns are labels."""
    path = Path(arg).expanduser()
    if not path.is_file():
        raise DatasetError(f"csv: no file {arg!r}")
    name = f"csv-{safe_name(path.stem)}"
    return SourcePlan(
        name=name,
        files=[path],
        read=lambda progress: read_cif_csv(path, name=name, source=f"csv:{path.name}", progress=progress),
    )


# ------------------------------------------------------------------------------------------- folder
def _structure_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.name != LABELS_FILE
        and (p.suffix.lower() in STRUCTURE_SUFFIXES or "POSCAR" in p.name or "CONTCAR" in p.name)
    )


def _read_json(path: Path) -> tuple[Structure | None, dict[str, float], tuple[str, str] | None]:
    """A pymatgen Structure JSON, or ``{"structure": {...}, "labels": {...}}``."""
    try:
        data = json.loads(path.read_text())
    except Exception as exc:
        return None, {}, ("malformed_structure", f"{path.name} is not JSON: {first_line(exc)}")
    labels: dict[str, float] = {}
    if isinstance(data, dict) and "structure" in data:
        raw_labels = data.get("labels", {k: v for k, v in data.items() if k != "structure"})
        labels = {k: to_float(v) for k, v in raw_labels.items() if isinstance(v, int | float) or v is None}
        data = data["structure"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_dict(data)
    except Exception as exc:
        return None, labels, ("malformed_structure", f"{path.name} is not a pymatgen Structure: {first_line(exc)}")
    return structure, labels, None


def read_folder(folder: Path, *, name: str, progress: bool = False) -> RawDataset:
    """Every CIF/POSCAR/JSON file of ``folder``; labels from ``labels.csv`` (first column: file name) or JSON."""
    import pandas as pd

    files = _structure_files(folder)
    if not files:
        raise DatasetError(f"{folder}: no structure files (CIF, POSCAR, JSON)")
    table: dict[str, dict[str, float]] = {}
    label_names: list[str] = []
    labels_csv = folder / LABELS_FILE
    if labels_csv.is_file():
        df = pd.read_csv(labels_csv)
        key = df.columns[0]
        label_names = [c for c in df.columns[1:] if pd.api.types.is_numeric_dtype(df[c])]
        for rec in df.to_dict("records"):
            table[str(rec[key])] = {c: to_float(rec[c]) for c in label_names}
    rows: list[RawRecord] = []
    json_labels: set[str] = set()
    for path in progress_iter(files, f"parsing {folder.name}", progress):
        labels: dict[str, float] = {}
        if path.suffix.lower() == ".json":
            structure, labels, error = _read_json(path)
            json_labels |= set(labels)
        else:
            structure, error = parse_structure_file(path)
        labels = {**labels, **table.get(path.name, table.get(path.stem, {}))}
        rows.append(RawRecord(id=path.name, structure=structure, labels=labels, error=error))
    names = list(dict.fromkeys([*label_names, *sorted(json_labels)]))
    props = {n: _unit_unknown(n, f"{folder.name}/{LABELS_FILE}" if n in label_names else "JSON files") for n in names}
    return RawDataset(name=name, source=f"folder:{folder.name}", rows=rows, properties=props)


def plan_folder(arg: str, cache_dir: Path | None = None) -> SourcePlan:
    """``folder:DIR``: CIF/POSCAR/JSON files, labels from ``DIR/labels.csv`` or from JSON files."""
    folder = Path(arg).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"folder: no directory {arg!r}")
    name = f"folder-{safe_name(folder.resolve().name)}"
    files = _structure_files(folder) + ([folder / LABELS_FILE] if (folder / LABELS_FILE).is_file() else [])
    return SourcePlan(name=name, files=files, read=lambda progress: read_folder(folder, name=name, progress=progress))


# ------------------------------------------------------------------------------------------- extxyz
_INFO_IDS = ("id", "material_id", "mp_id", "name")


def read_extxyz(path: Path, *, name: str, progress: bool = False) -> RawDataset:
    """Frames of an extended-XYZ file; scalar numbers in ``atoms.info`` (and a stored energy) are labels."""
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    try:
        frames = read(path, index=":", format="extxyz")
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable extended-XYZ file ({first_line(exc)})") from None
    rows: list[RawRecord] = []
    names: dict[str, str] = {}
    for i, atoms in enumerate(progress_iter(list(frames), f"parsing {path.name}", progress)):
        info = dict(atoms.info)
        rid = next((str(info[k]) for k in _INFO_IDS if k in info), str(i))
        labels: dict[str, float] = {}
        for key, value in info.items():
            if key in _INFO_IDS or isinstance(value, bool | str):
                continue
            if isinstance(value, int | float | np.integer | np.floating):
                labels[key] = float(value)
                names.setdefault(key, _unit_unknown(key, "atoms.info"))
        if atoms.calc is not None:
            for key, unit in (("energy", "eV"), ("free_energy", "eV")):
                value = atoms.calc.results.get(key)
                if value is not None and np.ndim(value) == 0:
                    labels[key] = float(value)
                    names.setdefault(key, f"{key.replace('_', ' ')} of the cell, total ({unit})")
        structure = None
        error = None
        if not all(atoms.pbc) or atoms.cell.rank < 3:
            error = ("malformed_structure", f"frame {i} has no periodic 3D cell (pbc={atoms.pbc.tolist()})")
        else:
            try:
                structure = AseAtomsAdaptor.get_structure(atoms)
            except Exception as exc:
                error = ("malformed_structure", f"frame {i} does not convert: {first_line(exc)}")
        rows.append(RawRecord(id=rid, structure=structure, labels=labels, error=error))
    if len({r.id for r in rows}) != len(rows):
        for i, r in enumerate(rows):
            r.id = str(i)
    return RawDataset(name=name, source=f"extxyz:{path.name}", rows=rows, properties=names)


def plan_extxyz(arg: str, cache_dir: Path | None = None) -> SourcePlan:
    """``extxyz:PATH``: extended-XYZ frames, labels from ``atoms.info``."""
    path = Path(arg).expanduser()
    if not path.is_file():
        raise DatasetError(f"extxyz: no file {arg!r}")
    name = f"extxyz-{safe_name(path.stem)}"
    return SourcePlan(name=name, files=[path], read=lambda progress: read_extxyz(path, name=name, progress=progress))
