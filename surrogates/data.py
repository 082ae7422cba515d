"""Labelled data for property models: loading through ``ingest``, fixed splits, prediction inputs.

``load_property_data("perov5:/path/val.csv", "heat_all")`` gives the records that have a finite value of
the property, with their structures where they exist and their compositions always. ``ingest`` (the
public data-set loaders) is used when it is importable; a small perov_5 CSV reader stands in otherwise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Structure

from core.errors import ConfigError

__all__ = [
    "PropertyData",
    "Split",
    "load_property_data",
    "processed_dir",
    "read_structures",
    "split_data",
]

#: Units of the perov_5 columns, for the fallback reader.
_PEROV5_PROPERTIES = {
    "heat_all": "heat of formation (eV/atom)",
    "heat_ref": "heat of formation vs reference (eV/atom)",
    "dir_gap": "direct band gap, GLLB-SC (eV)",
    "ind_gap": "indirect band gap, GLLB-SC (eV)",
}


@dataclass(frozen=True, kw_only=True)
class PropertyData:
    """``n`` labelled materials of one property.

    Attributes:
        name: data set name; spec: the spec it was loaded from.
        property_name, unit_description: the target and its description with unit.
        ids, formulas: ``n`` strings each.
        structures: ``n`` structures or None (composition-only records).
        compositions: ``n`` compositions.
        y: ``(n,)`` float64 finite targets.
        data_hash: hash of the underlying data set content.
        splits: official splits as lists of record ids (may be empty).
    """

    name: str
    spec: str
    property_name: str
    unit_description: str
    ids: list[str]
    formulas: list[str]
    structures: list[Structure | None]
    compositions: list[Composition]
    y: np.ndarray
    data_hash: str
    splits: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_all_structures(self) -> bool:
        """True when every record has a structure (a GNN can be trained)."""
        return all(s is not None for s in self.structures)

    def selection_key(self, positions: Sequence[int] | np.ndarray) -> str:
        """Hash identifying the records at ``positions`` of this data (for the graph cache)."""
        h = hashlib.sha256(self.data_hash.encode())
        for i in positions:
            h.update(self.ids[int(i)].encode() + b"\0")
        return h.hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class Split:
    """Positions (into a :class:`PropertyData`) of the train, validation and test records.

    ``source`` is ``official`` (the data set's own train/test split) or ``random`` (seeded 80/20).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    source: str
    seed: int

    def describe(self) -> dict[str, object]:
        """Sizes and provenance, for the registry."""
        return {
            "source": self.source,
            "seed": self.seed,
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test": len(self.test),
        }


def processed_dir() -> Path:
    """Where preprocessed artefacts (graphs) go: ``ingest.processed_dir()``, else ``<data home>/processed``."""
    try:
        from ingest import processed_dir as ingest_processed_dir

        return Path(ingest_processed_dir())
    except ImportError:
        from core.paths import subdir

        return subdir("processed")


def _load_perov5_csv(path: Path, prop: str) -> PropertyData:
    """Fallback reader for the perov_5 CSV format (columns ``cif``, ``formula`` and the properties)."""
    import pandas as pd

    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    if prop not in _PEROV5_PROPERTIES:
        raise ConfigError(f"perov5 has no property {prop!r}; properties: {', '.join(_PEROV5_PROPERTIES)}")
    df = pd.read_csv(path)
    keep = np.isfinite(df[prop].to_numpy(dtype=np.float64))
    df = df[keep]
    structures = [Structure.from_str(c, fmt="cif") for c in df["cif"]]
    ids = [str(i) for i in df.get("material_id", df.index)]
    return PropertyData(
        name="perov5",
        spec=f"perov5:{path}",
        property_name=prop,
        unit_description=_PEROV5_PROPERTIES[prop],
        ids=ids,
        formulas=[s.composition.reduced_formula for s in structures],
        structures=list(structures),
        compositions=[s.composition for s in structures],
        y=df[prop].to_numpy(dtype=np.float64),
        data_hash=hashlib.sha256(path.read_bytes()).hexdigest(),
    )


def load_property_data(spec: str, prop: str, *, cache_dir: Path | None = None) -> PropertyData:
    """Records of data set ``spec`` with a finite ``prop`` (see ``ingest.load_dataset`` for the specs).

    ``cache_dir`` is ingest's raw-data folder laid out ``<source>/<file>`` (e.g. ``../shared/data``), read
    before any download.

    Raises:
        ConfigError: unknown data set, missing file or property (ingest's own errors pass through).
    """
    try:
        from ingest import load_dataset
    except ImportError:
        load_dataset = None
    if load_dataset is None:
        if spec.startswith("perov5:"):
            return _load_perov5_csv(Path(spec.split(":", 1)[1]).expanduser(), prop)
        raise ConfigError(f"data set {spec!r} needs the ingest package, which is not available")
    dataset = load_dataset(spec, cache_dir=cache_dir)
    if prop not in dataset.properties:
        raise ConfigError(
            f"{dataset.name} has no property {prop!r}; properties: {', '.join(sorted(dataset.properties))}"
        )
    y_all = dataset.targets(prop)
    records = [r for r, v in zip(dataset.records, y_all, strict=True) if np.isfinite(v)]
    if not records:
        raise ConfigError(f"{dataset.name} has no record with a value of {prop!r}")
    return PropertyData(
        name=dataset.name,
        spec=spec,
        property_name=prop,
        unit_description=str(dataset.properties[prop]),
        ids=[r.id for r in records],
        formulas=[r.formula for r in records],
        structures=[r.structure for r in records],
        compositions=[r.composition for r in records],
        y=np.asarray([r.labels[prop] for r in records], dtype=np.float64),
        data_hash=str(dataset.data_hash),
        splits={k: list(v) for k, v in (dataset.splits or {}).items()},
    )


def split_data(data: PropertyData, *, seed: int = 0, test_fraction: float = 0.2, val_fraction: float = 0.1) -> Split:
    """Train/validation/test positions.

    The data set's official ``train``/``test`` split when it has one (records outside both are dropped),
    otherwise a seeded random ``test_fraction`` test split. The validation set (early stopping, std
    recalibration) is a seeded ``val_fraction`` of the training part; the test set is never used for fitting.
    """
    n = len(data)
    if n < 3:
        raise ConfigError(f"need at least 3 labelled records to split, got {n}")
    position = {rid: i for i, rid in enumerate(data.ids)}
    if "train" in data.splits and "test" in data.splits:
        train_all = np.asarray(sorted(position[i] for i in data.splits["train"] if i in position), dtype=np.int64)
        test = np.asarray(sorted(position[i] for i in data.splits["test"] if i in position), dtype=np.int64)
        source = "official"
    else:
        perm = np.random.default_rng(seed).permutation(n)
        n_test = max(1, round(test_fraction * n))
        test, train_all = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        source = "random"
    if len(train_all) < 2 or len(test) < 1:
        raise ConfigError(f"split leaves {len(train_all)} training and {len(test)} test records")
    n_val = round(val_fraction * len(train_all)) if len(train_all) >= 10 else 0
    perm = np.random.default_rng(seed + 1).permutation(len(train_all))
    val = np.sort(train_all[perm[:n_val]])
    train = np.sort(train_all[perm[n_val:]])
    return Split(train=train, val=val, test=test, source=source, seed=seed)


def read_structures(path: Path | str) -> tuple[list[str], list[Structure]]:
    """Structures to predict, in input order, with ids.

    ``path`` is a CSV with a ``cif`` column (perov_5 format; ids from ``material_id``/``id`` or the row
    number), a structure file pymatgen reads (CIF, POSCAR, JSON, ...; id = file stem), or a folder of such
    files (sorted by name). Raises ConfigError on anything unreadable.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"no such file or folder: {path}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise ConfigError(f"{path} holds no structure files")
        ids, structures = [], []
        for f in files:
            ids.append(f.stem)
            structures.append(_read_one(f))
        return ids, structures
    if path.suffix.lower() == ".csv":
        import pandas as pd

        df = pd.read_csv(path)
        if "cif" not in df.columns:
            raise ConfigError(f"{path}: a CSV input needs a 'cif' column (perov_5 format)")
        id_col = next((c for c in ("material_id", "id", "ID") if c in df.columns), None)
        ids = [str(v) for v in (df[id_col] if id_col else df.index)]
        structures = []
        for i, cif in enumerate(df["cif"]):
            try:
                structures.append(Structure.from_str(str(cif), fmt="cif"))
            except Exception as exc:
                raise ConfigError(f"{path}: row {i} has an unreadable CIF: {exc}") from exc
        return ids, structures
    return [path.stem], [_read_one(path)]


def _read_one(path: Path) -> Structure:
    try:
        return Structure.from_file(path)
    except Exception as exc:
        raise ConfigError(f"cannot read a structure from {path}: {exc}") from exc
