"""The Liverpool Li-ion conductivity database (Hargreaves et al.; shipped in ``NRC-Mila/OBELiX`` ``data/misc/``).

820 measurements of composition, temperature (°C), ionic conductivity (S/cm) and family; no structures. Only
measurements near room temperature are kept: ``ROOM_T_C`` (15-35 °C, the window around 25 °C that holds 465
of the 820 rows); several room-temperature measurements of one composition (fractional composition equal to
``COMPOSITION_DECIMALS``) become one record whose label is the mean of their log10 conductivities.

Specs:
- ``liverpool`` / ``liverpool:PATH.csv``: those records alone (``log10_conductivity``, log10 S/cm).
- ``obelix-liverpool`` / ``obelix-liverpool:DIR``: OBELiX (its official train/test split) plus every Liverpool
  record whose composition matches no OBELiX entry (nor is linked from one by OBELiX's ``Liion ID``), added to
  the training split only, so OBELiX's test split stays unseen.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from pymatgen.core import Composition

from ingest.download import download
from ingest.paths import raw_dir
from ingest.records import DatasetError, RawDataset, RawRecord
from ingest.sources import obelix
from ingest.sources.base import SourcePlan, first_line, parse_composition

FILE = "LiIonDatabase.csv"
URL = f"https://raw.githubusercontent.com/NRC-Mila/OBELiX/{obelix.TAG}/data/misc/{FILE}"
ROOM_T_C = (15.0, 35.0)
"""Temperatures (°C) kept as room temperature, both ends included."""
COMPOSITION_DECIMALS = 3
"""Atomic fractions are rounded to this many decimals to tell compositions apart."""
LABEL = obelix.LABEL
PROPERTIES = {LABEL: "log10 of the experimental ionic conductivity at 15-35 °C, Liverpool database (log10 S/cm)"}


def composition_key(comp: Composition) -> tuple[tuple[str, float], ...]:
    """Sorted (element, atomic fraction rounded to ``COMPOSITION_DECIMALS``) pairs of a composition."""
    fractions = comp.fractional_composition.get_el_amt_dict()
    return tuple(sorted((el, round(float(x), COMPOSITION_DECIMALS)) for el, x in fractions.items()))


def formula_text(value: object) -> str:
    """The database's composition cell as a formula: quotes and spaces removed (``"(Li2S)0.7 (P2S5)0.3"``)."""
    return str(value).strip().strip('"').replace(" ", "")


def locate(cache_dir: Path | None = None, *, force: bool = False) -> Path:
    """``LiIonDatabase.csv``: in ``cache_dir/obelix/`` when there, else the raw cache, else downloaded into it."""
    if cache_dir is not None and not force:
        local = raw_dir(obelix.SOURCE, cache_dir) / FILE
        if local.is_file():
            return local
    dest = raw_dir(obelix.SOURCE) / FILE
    if dest.is_file() and not force:
        return dest
    hint = f"offline, copy {FILE} to {dest} or pass --cache-dir DIR with DIR/obelix/{FILE}, e.g. ../shared/data"
    return download(URL, dest, hint=hint)


def read_room_temperature(path: Path) -> list[RawRecord]:
    """One record per composition measured at ``ROOM_T_C``, label the mean log10 conductivity (log10 S/cm).

    Rows that do not parse (composition, conductivity) become records with an error, so the cleaning report
    lists them; rows outside the temperature window are not records at all (see the module docstring).
    """
    import pandas as pd

    try:
        df = pd.read_csv(path, encoding="utf-8-sig")
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable CSV ({first_line(exc)})") from None
    missing = [c for c in ("ID", "composition", "temperature", "target") if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)} (Liverpool database format)")
    lo, hi = ROOM_T_C
    groups: dict[tuple[tuple[str, float], ...], list[dict[str, Any]]] = defaultdict(list)
    comps: dict[tuple[tuple[str, float], ...], Composition] = {}
    bad: list[RawRecord] = []
    for rec in df.to_dict("records"):
        temperature = float(rec["temperature"]) if pd.notna(rec["temperature"]) else math.nan
        if not lo <= temperature <= hi:
            continue
        rid = f"liverpool-{rec['ID']}"
        comp, error = parse_composition(formula_text(rec["composition"]))
        sigma = float(rec["target"]) if pd.notna(rec["target"]) else math.nan
        if comp is None or not sigma > 0:
            reason = error or ("nan_label", f"conductivity {rec['target']!r} is not a positive number")
            bad.append(
                RawRecord(
                    id=rid,
                    composition=comp,
                    labels={LABEL: math.nan},
                    error=error,
                    meta={"composition": str(rec["composition"]), "note": reason[1]},
                )
            )
            continue
        key = composition_key(comp)
        comps.setdefault(key, comp)
        groups[key].append({**rec, "log10": math.log10(sigma), "rid": rid})
    rows: list[RawRecord] = []
    for key, items in groups.items():
        meta = {
            "composition": str(items[0]["composition"]),
            "temperatures_C": [float(i["temperature"]) for i in items],
            "n_measurements": len(items),
            "family": str(items[0].get("family", "")),
            "doi": str(items[0].get("source", "")),
            "liverpool_ids": [int(i["ID"]) for i in items],
        }
        label = sum(i["log10"] for i in items) / len(items)
        rows.append(RawRecord(id=items[0]["rid"], composition=comps[key], labels={LABEL: label}, meta=meta))
    return rows + bad


def _obelix_links(folder: Path) -> tuple[set[tuple[tuple[str, float], ...]], set[int]]:
    """Composition keys of every OBELiX entry and the Liverpool ids OBELiX links to (``Liion ID``)."""
    import pandas as pd

    frames = [pd.read_csv(folder / f) for f in ("all.csv", "train.csv", "test.csv") if (folder / f).is_file()]
    if not frames:
        raise DatasetError(f"{folder}: no OBELiX all.csv / train.csv / test.csv")
    df = pd.concat(frames, ignore_index=True)
    keys: set[tuple[tuple[str, float], ...]] = set()
    for column in ("Reduced Composition", "True Composition"):
        for text in df.get(column, pd.Series(dtype=str)).dropna().astype(str):
            for variant in (text, text.replace("*", "")):
                comp, _ = parse_composition(variant)
                if comp is not None:
                    keys.add(composition_key(comp))
    links = {int(v) for v in df.get("Liion ID", pd.Series(dtype=float)).dropna()}
    return keys, links


def plan(arg: str, cache_dir: Path | None = None) -> SourcePlan:
    """``liverpool`` (cache or download) or ``liverpool:PATH.csv``: room-temperature records alone."""
    path = Path(arg).expanduser() if arg else locate(cache_dir)
    if not path.is_file():
        raise DatasetError(f"liverpool: no file {arg!r}")

    def read(progress: bool) -> RawDataset:
        return RawDataset(
            name="liverpool",
            source="liverpool",
            rows=read_room_temperature(path),
            properties=dict(PROPERTIES),
            bounds=dict(obelix.BOUNDS),
        )

    return SourcePlan(name="liverpool", files=[path], read=read, params={"room_t_c": ROOM_T_C})


def plan_combined(arg: str, cache_dir: Path | None = None) -> SourcePlan:
    """``obelix-liverpool[:DIR]``: OBELiX plus the Liverpool records it does not hold, added to ``train``."""
    base = obelix.plan(arg, cache_dir)
    folder = Path(arg).expanduser() if arg else raw_dir(obelix.SOURCE, cache_dir)
    local = folder / FILE
    path = local if local.is_file() else locate(cache_dir)

    def read(progress: bool) -> RawDataset:
        raw = base.read(progress)
        keys, links = _obelix_links(folder)
        extra = [
            r
            for r in read_room_temperature(path)
            if r.error is None
            and r.composition is not None
            and composition_key(r.composition) not in keys
            and not set(r.meta.get("liverpool_ids", [])) & links
        ]
        splits = dict(raw.splits)
        splits["train"] = [*splits.get("train", []), *(r.id for r in extra)]
        return RawDataset(
            name="obelix-liverpool",
            source="obelix+liverpool",
            rows=[*raw.rows, *extra],
            properties={
                LABEL: "log10 of the experimental room-temperature ionic conductivity, OBELiX + Liverpool "
                "database at 15-35 °C (log10 S/cm)"
            },
            splits=splits,
            bounds=dict(raw.bounds),
        )

    return SourcePlan(name="obelix-liverpool", files=[*base.files, path], read=read, params={"room_t_c": ROOM_T_C})
