"""OBELiX (NRC-Mila, CC BY 4.0): room-temperature ionic conductivity of 599 Li solid electrolytes.

Label: ``log10_conductivity`` = log10 of the ionic conductivity in S/cm. 321 entries come with a CIF (positions
with added noise, most partially occupied); the others keep their composition only. The official train/test split
(478/121) is kept in ``Dataset.splits``.
"""

from __future__ import annotations

import math
import tarfile
from pathlib import Path
from typing import Any

from ingest.download import download
from ingest.paths import raw_dir
from ingest.records import DatasetError, RawDataset, RawRecord
from ingest.sources.base import SourcePlan, first_line, parse_composition, parse_structure_text, progress_iter

SOURCE = "obelix"
TAG = "v1.2.0-data"
URL = "https://raw.githubusercontent.com/NRC-Mila/OBELiX/{tag}/data/downloads/{file}"
DOWNLOADS = ("all.csv", "test.csv", "all_cifs.tar.gz")
TARBALL = "all_cifs.tar.gz"
CIF_FOLDERS = ("all_randomized_cifs", "anon_cifs", "cifs")
CONDUCTIVITY = "Ionic conductivity (S cm-1)"
LABEL = "log10_conductivity"
PROPERTIES = {LABEL: "log10 of the experimental room-temperature ionic conductivity (log10 S/cm)"}
BOUNDS: dict[str, tuple[float | None, float | None]] = {LABEL: (-20.0, 2.0)}
META = {
    "Reduced Composition": "reduced_composition",
    "True Composition": "true_composition",
    "Space group #": "spacegroup_number",
    "Family": "family",
    "DOI": "doi",
    "Cif ID": "cif_status",
}


def offline_hint(cache_dir: Path | None = None) -> str:
    """How to point the cache at a local copy."""
    return (
        f"offline, copy {', '.join(DOWNLOADS)} to {raw_dir(SOURCE, cache_dir)} or pass --cache-dir DIR "
        f"(cache_dir=DIR) with DIR/{SOURCE}/, e.g. ../shared/data"
    )


def fetch(cache_dir: Path | None = None, *, force: bool = False, progress: bool = False) -> Path:
    """Download all.csv, test.csv and all_cifs.tar.gz of tag v1.2.0-data into the raw cache."""
    folder = raw_dir(SOURCE, cache_dir)
    for file in DOWNLOADS:
        dest = folder / file
        if force or not dest.is_file():
            download(URL.format(tag=TAG, file=file), dest, hint=offline_hint(cache_dir), progress=progress)
    return folder


def _conductivity(text: Any) -> tuple[float, bool]:
    """(log10 S/cm, censored) from a cell such as ``1.2e-4`` or ``<1E-10``; NaN when blank or not a number."""
    s = str(text).strip() if text is not None else ""
    censored = s.startswith("<")
    try:
        value = float(s.lstrip("<").strip())
    except ValueError:
        return math.nan, False
    if not value > 0:  # zero, negative or NaN: reported as an invalid label
        return math.nan, censored
    return math.log10(value), censored


def _read_cifs(folder: Path) -> dict[str, str]:
    """CIF texts by entry id, from ``all_cifs.tar.gz`` or an extracted folder."""
    for name in CIF_FOLDERS:
        if (folder / name).is_dir():
            return {p.stem: p.read_text(errors="replace") for p in sorted((folder / name).glob("*.cif"))}
    tarball = folder / TARBALL
    if not tarball.is_file():
        return {}
    cifs: dict[str, str] = {}
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".cif"):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        cifs[Path(member.name).stem] = handle.read().decode(errors="replace")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetError(f"{tarball}: unreadable archive ({first_line(exc)})") from None
    return cifs


def _composition(rec: dict[str, Any]) -> tuple[Any, tuple[str, str] | None]:
    """The reduced composition, else the same without hydrate dots ('*'), else the true composition."""
    candidates = [rec.get("Reduced Composition"), rec.get("True Composition")]
    texts = [str(c) for c in candidates if isinstance(c, str) and c.strip()]
    texts = [texts[0], texts[0].replace("*", ""), *texts[1:]] if texts else []
    error: tuple[str, str] | None = ("malformed_structure", "no composition given")
    for text in texts:
        comp, err = parse_composition(text)
        if comp is not None:
            return comp, None
        error = error if error[1] != "no composition given" else err
    return None, error


def read(folder: Path, *, progress: bool = False) -> RawDataset:
    """Rows of ``all.csv`` (or train.csv + test.csv), CIFs where the entry has one, the official split."""
    import pandas as pd

    def csv(name: str) -> pd.DataFrame | None:
        path = folder / name
        return pd.read_csv(path, dtype={"ID": str}, keep_default_na=True) if path.is_file() else None

    all_df, train_df, test_df = csv("all.csv"), csv("train.csv"), csv("test.csv")
    if all_df is None:
        if train_df is None or test_df is None:
            raise DatasetError(f"{folder}: needs all.csv, or train.csv and test.csv (OBELiX data folder)")
        all_df = pd.concat([train_df, test_df], ignore_index=True)
    for col in ("ID", CONDUCTIVITY):
        if col not in all_df.columns:
            raise DatasetError(f"{folder}: column {col!r} missing; has {', '.join(map(str, all_df.columns))}")
    ids = all_df["ID"].astype(str).tolist()
    splits: dict[str, list[str]] = {}
    if test_df is not None:
        test_ids = set(test_df["ID"].astype(str))
        train_ids = set(train_df["ID"].astype(str)) if train_df is not None else set(ids) - test_ids
        splits = {"train": [i for i in ids if i in train_ids], "test": [i for i in ids if i in test_ids]}
    cifs = _read_cifs(folder)
    rows: list[RawRecord] = []
    for rec in progress_iter(all_df.to_dict("records"), "parsing OBELiX", progress):
        rid = str(rec["ID"])
        log_sigma, censored = _conductivity(rec[CONDUCTIVITY])
        meta = {key: rec.get(col) for col, key in META.items() if col in rec and pd.notna(rec.get(col))}
        labels = {LABEL: log_sigma}
        if rid in cifs:
            structure, error = parse_structure_text(cifs[rid], "cif")
            rows.append(
                RawRecord(
                    id=rid,
                    structure=structure,
                    labels=labels,
                    censored={LABEL} if censored else set(),
                    error=error,
                    meta=meta,
                )
            )
            continue
        comp, error = _composition(rec)
        rows.append(
            RawRecord(
                id=rid,
                composition=comp,
                labels=labels,
                censored={LABEL} if censored else set(),
                error=error,
                meta=meta,
            )
        )
    return RawDataset(
        name="obelix", source="obelix", rows=rows, properties=dict(PROPERTIES), splits=splits, bounds=dict(BOUNDS)
    )


def plan(arg: str, cache_dir: Path | None = None) -> SourcePlan:
    """``obelix:DIR`` (a local OBELiX folder) or ``obelix`` (the cached download of tag v1.2.0-data)."""
    folder = Path(arg).expanduser() if arg else fetch(cache_dir)
    if not folder.is_dir():
        raise DatasetError(f"obelix: no directory {arg!r}")
    files = [folder / f for f in ("all.csv", "train.csv", "test.csv", TARBALL) if (folder / f).is_file()]
    for name in CIF_FOLDERS:
        if (folder / name).is_dir():
            files += sorted((folder / name).glob("*.cif"))
            break
    return SourcePlan(name="obelix", files=files, read=lambda progress: read(folder, progress=progress))
