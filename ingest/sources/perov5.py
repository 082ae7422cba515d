"""perov_5 (Castelli et al. 2012 via CDVAE): 5-atom ABX3 perovskites with heats of formation and band gaps."""

from __future__ import annotations

from pathlib import Path

from ingest.download import download
from ingest.paths import raw_dir
from ingest.records import DatasetError, RawDataset
from ingest.sources.base import SourcePlan, safe_name
from ingest.sources.local import read_cif_csv

SPLITS = ("train", "val", "test")
URL = "https://raw.githubusercontent.com/txie-93/cdvae/main/data/perov_5/{split}.csv"
SOURCE = "perov_5"
PROPERTIES = {
    "heat_all": "heat of formation, DFT (RPBE), Castelli et al. 2012 (eV/atom)",
    "heat_ref": "heat of formation against the source's alternative elemental references (eV/atom)",
    "dir_gap": "direct band gap, GLLB-SC (eV)",
    "ind_gap": "indirect band gap, GLLB-SC; 0 for metals (eV)",
}
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "heat_all": (-10.0, 10.0),
    "heat_ref": (-10.0, 10.0),
    "dir_gap": (0.0, 20.0),
    "ind_gap": (0.0, 20.0),
}


def split_path(split: str, cache_dir: Path | None = None) -> Path:
    """Where the cached download of one split lives."""
    return raw_dir(SOURCE, cache_dir) / f"{split}.csv"


def offline_hint(split: str, cache_dir: Path | None = None) -> str:
    """How to point the cache at a local copy."""
    return (
        f"offline, copy {split}.csv to {split_path(split, cache_dir)} or pass --cache-dir DIR (cache_dir=DIR) "
        f"with DIR/{SOURCE}/{split}.csv, e.g. ../shared/data"
    )


def fetch(split: str, cache_dir: Path | None = None, *, force: bool = False, progress: bool = False) -> Path:
    """Download one split into the raw cache (kept if present, unless ``force``)."""
    if split not in SPLITS:
        raise DatasetError(f"perov5 has splits {', '.join(SPLITS)}, not {split!r}")
    dest = split_path(split, cache_dir)
    if dest.is_file() and not force:
        return dest
    return download(URL.format(split=split), dest, hint=offline_hint(split, cache_dir), progress=progress)


def plan(arg: str, cache_dir: Path | None = None) -> SourcePlan:
    """``perov5:val`` (cached download) or ``perov5:PATH.csv`` (a local file in the same format)."""
    arg = arg or "val"
    if arg in SPLITS and not Path(arg).is_file():
        path = fetch(arg, cache_dir)
        name = f"perov5-{arg}"
    else:
        path = Path(arg).expanduser()
        if not path.is_file():
            raise DatasetError(f"perov5: {arg!r} is neither a split ({', '.join(SPLITS)}) nor a CSV file")
        name = f"perov5-{safe_name(path.stem)}"

    def read(progress: bool) -> RawDataset:
        return read_cif_csv(
            path,
            name=name,
            source=f"perov5:{path.name}",
            id_column="material_id",
            label_columns=list(PROPERTIES),
            properties=PROPERTIES,
            bounds=BOUNDS,
            meta_columns=[],
            progress=progress,
        )

    return SourcePlan(name=name, files=[path], read=read)
