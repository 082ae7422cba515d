"""MP-20 (binary and ternary subset) and MPTS-52: Materials Project structures as published with WyckoffTransformer.

``mp20:val`` (``train``, ``test``) reads ``mp_20_biternary/<split>.csv.gz``: formation energy (eV/atom), PBE/GGA+U
band gap (eV) and energy above hull (eV/atom) of MP structures with at most 20 atoms per cell. ``mpts52:val``
reads ``mpts_52/<split>.csv.gz`` (structures up to 52 atoms, split by the year first reported; no band gaps).
Both files come from the public repository ``SymmetryAdvantage/WyckoffTransformer`` at a fixed commit; a
``cache_dir`` laid out ``<source>/<file>`` (e.g. ``../shared/data``) is read first, then the raw cache, and only
then is the file downloaded (into the raw cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingest.download import download
from ingest.paths import raw_dir
from ingest.records import DatasetError, RawDataset, RawRecord
from ingest.sources.base import SourcePlan, first_line, parse_structure_text, progress_iter, safe_name, to_float

REPOSITORY = "SymmetryAdvantage/WyckoffTransformer"
COMMIT = "507e8f147a0e87905c2574ebfbbfc9fa21c2fb09"
URL = "https://raw.githubusercontent.com/{repo}/{commit}/data/{source}/{split}.csv.gz"
SPLITS = ("train", "val", "test")

_FORMATION = "formation energy per atom, Materials Project GGA/GGA+U with MP corrections (eV/atom)"
_HULL = "energy above the Materials Project convex hull (eV/atom)"


@dataclass(frozen=True, kw_only=True)
class Source:
    """One of the two data sets: its folder name, columns and labels."""

    kind: str
    """Spec prefix (``mp20``, ``mpts52``)."""
    folder: str
    """Folder under the raw cache and in the repository (``mp_20_biternary``, ``mpts_52``)."""
    labels: dict[str, str]
    """Label name -> the CSV column it is read from."""
    properties: dict[str, str]
    """Label name -> 'description (unit)'."""
    meta: dict[str, str]
    """CSV column -> meta key kept on each record."""


BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "formation_energy_per_atom": (-10.0, 10.0),
    "band_gap": (0.0, 20.0),
    "e_above_hull": (0.0, 10.0),
}

SOURCES: dict[str, Source] = {
    "mp20": Source(
        kind="mp20",
        folder="mp_20_biternary",
        labels={
            "formation_energy_per_atom": "formation_energy_per_atom",
            "band_gap": "band_gap",
            "e_above_hull": "e_above_hull",
        },
        properties={
            "formation_energy_per_atom": _FORMATION,
            "band_gap": "band gap, PBE/GGA+U, Materials Project; 0 for metals (eV)",
            "e_above_hull": _HULL,
        },
        meta={"pretty_formula": "pretty_formula", "spacegroup.number": "spacegroup_number"},
    ),
    "mpts52": Source(
        kind="mpts52",
        folder="mpts_52",
        labels={"formation_energy_per_atom": "formation_energy_per_atom", "e_above_hull": "energy_above_hull"},
        properties={"formation_energy_per_atom": _FORMATION, "e_above_hull": _HULL},
        meta={"year": "year", "theoretical": "theoretical"},
    ),
}


def file_name(split: str) -> str:
    """``<split>.csv.gz``."""
    return f"{split}.csv.gz"


def split_path(kind: str, split: str, cache_dir: Path | None = None) -> Path:
    """Where one split lives under ``cache_dir`` (or, without one, in the raw cache)."""
    return raw_dir(SOURCES[kind].folder, cache_dir) / file_name(split)


def url(kind: str, split: str) -> str:
    """The public URL of one split at the pinned commit."""
    return URL.format(repo=REPOSITORY, commit=COMMIT, source=SOURCES[kind].folder, split=split)


def offline_hint(kind: str, split: str) -> str:
    """How to work offline."""
    folder = SOURCES[kind].folder
    return (
        f"offline, copy {folder}/{file_name(split)} to {split_path(kind, split)} or pass --cache-dir DIR "
        f"(cache_dir=DIR) with DIR/{folder}/{file_name(split)}, e.g. ../shared/data"
    )


def fetch(kind: str, split: str, cache_dir: Path | None = None, *, force: bool = False, progress: bool = False) -> Path:
    """The file of one split: ``cache_dir``'s copy, else the raw cache's, else downloaded into the raw cache."""
    if kind not in SOURCES:
        raise DatasetError(f"unknown source {kind!r}; use {', '.join(SOURCES)}")
    if split not in SPLITS:
        raise DatasetError(f"{kind} has splits {', '.join(SPLITS)}, not {split!r}")
    if cache_dir is not None and not force:
        local = split_path(kind, split, cache_dir)
        if local.is_file():
            return local
    dest = split_path(kind, split)
    if dest.is_file() and not force:
        return dest
    return download(url(kind, split), dest, hint=offline_hint(kind, split), progress=progress)


def read(path: Path, source: Source, *, name: str, progress: bool = False) -> RawDataset:
    """Rows of one CSV (plain or gzipped): the CIF, the labels of ``source``, ids from ``material_id``."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable CSV ({first_line(exc)})") from None
    needed = ["material_id", "cif", *source.labels.values()]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; has {', '.join(map(str, df.columns))}")
    if not df["material_id"].astype(str).is_unique:
        raise DatasetError(f"{path}: material_id is not unique")
    rows: list[RawRecord] = []
    for rec in progress_iter(df.to_dict("records"), f"parsing {path.name}", progress):
        cif = rec["cif"] if isinstance(rec["cif"], str) else ""
        structure, error = parse_structure_text(cif, "cif")
        labels = {label: to_float(rec[column]) for label, column in source.labels.items()}
        meta = {key: rec[col] for col, key in source.meta.items() if col in rec and pd.notna(rec[col])}
        meta = {k: v.item() if hasattr(v, "item") else v for k, v in meta.items()}  # numpy scalars -> Python
        rows.append(RawRecord(id=str(rec["material_id"]), structure=structure, labels=labels, error=error, meta=meta))
    return RawDataset(
        name=name,
        source=f"{source.kind}:{path.name}",
        rows=rows,
        properties=dict(source.properties),
        bounds={k: v for k, v in BOUNDS.items() if k in source.labels},
    )


def _plan(kind: str, arg: str, cache_dir: Path | None) -> SourcePlan:
    source = SOURCES[kind]
    arg = arg or "val"
    if arg in SPLITS and not Path(arg).is_file():
        path = fetch(kind, arg, cache_dir)
        name = f"{kind}-{arg}"
    else:
        path = Path(arg).expanduser()
        if not path.is_file():
            raise DatasetError(f"{kind}: {arg!r} is neither a split ({', '.join(SPLITS)}) nor a CSV file")
        name = f"{kind}-{safe_name(path.name.removesuffix('.gz').removesuffix('.csv'))}"
    return SourcePlan(name=name, files=[path], read=lambda progress: read(path, source, name=name, progress=progress))


def plan_mp20(arg: str, cache_dir: Path | None = None) -> SourcePlan:
    """``mp20:val`` (``train``, ``test``: cached or downloaded) or ``mp20:PATH.csv[.gz]`` (same columns)."""
    return _plan("mp20", arg, cache_dir)


def plan_mpts52(arg: str, cache_dir: Path | None = None) -> SourcePlan:
    """``mpts52:val`` (``train``, ``test``: cached or downloaded) or ``mpts52:PATH.csv[.gz]`` (same columns)."""
    return _plan("mpts52", arg, cache_dir)
