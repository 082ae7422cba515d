"""Materials Project through ``mp-api`` (optional extra ``data``; key from ``MP_API_KEY``).

``mp:<query>`` where the query is ``mp-1,mp-2`` (material ids), ``Li-Fe-O`` (a chemical system), ``LiFePO4`` (a
formula) or ``key=value&key=value`` summary-search criteria (``elements=Li,O&is_stable=true&band_gap=0.5,3``;
comma lists of numbers become (min, max) ranges). The answer is stored as JSON under
``<raw>/mp/<query hash>.json.gz`` and reused until deleted.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymatgen.core import Composition, Element, Structure

from ingest.paths import raw_dir
from ingest.records import DatasetError, RawDataset, RawRecord
from ingest.sources.base import SourcePlan, first_line, progress_iter, to_float

SOURCE = "mp"
ENV_KEY = "MP_API_KEY"
PROPERTIES = {
    "formation_energy_per_atom": "formation energy per atom, GGA/GGA+U/r2SCAN mixing, Materials Project (eV/atom)",
    "energy_above_hull": "energy above the convex hull, Materials Project (eV/atom)",
    "band_gap": "band gap, Materials Project (eV)",
    "energy_per_atom": "uncorrected total energy per atom, Materials Project (eV/atom)",
}
FIELDS = ["material_id", "structure", *PROPERTIES]
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "formation_energy_per_atom": (-20.0, 20.0),
    "energy_above_hull": (0.0, 20.0),
    "band_gap": (0.0, 30.0),
}
MISSING_EXTRA = "mp needs the optional 'data' extra (mp-api): pip install -c constraints.txt -e '.[data]'"


def parse_query(query: str) -> dict[str, Any]:
    """Summary-search criteria from the text after ``mp:``."""
    query = query.strip()
    if not query:
        raise DatasetError("mp needs a query, e.g. mp:Li-Fe-O, mp:LiFePO4, mp:mp-19017,mp-1234 or mp:elements=Li,O")
    if "=" in query:
        criteria: dict[str, Any] = {}
        for part in query.split("&"):
            key, _, value = part.partition("=")
            items = [v.strip() for v in value.split(",") if v.strip()]
            if value.strip().lower() in ("true", "false"):
                criteria[key.strip()] = value.strip().lower() == "true"
            elif items and all(_is_number(v) for v in items):
                nums = [float(v) for v in items]
                criteria[key.strip()] = tuple(nums) if len(nums) == 2 else nums[0]
            else:
                criteria[key.strip()] = items if len(items) > 1 or key.strip() == "elements" else value.strip()
        return criteria
    parts = [p.strip() for p in query.split(",") if p.strip()]
    if all(p.startswith("mp-") for p in parts):
        return {"material_ids": parts}
    if "-" in query and all(Element.is_valid_symbol(e) for e in query.split("-")):
        return {"chemsys": query}
    try:
        Composition(query)
    except Exception:
        raise DatasetError(f"mp: cannot read query {query!r} (ids, chemical system, formula or key=value)") from None
    return {"formula": query}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def search(criteria: dict[str, Any], fields: list[str]) -> list[dict[str, Any]]:
    """Run a summary search with mp-api; documents as plain JSON-able dicts (structures as dicts)."""
    key = os.environ.get(ENV_KEY, "")
    if not key:
        raise DatasetError(f"mp needs a Materials Project API key in ${ENV_KEY} (https://materialsproject.org/api)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from mp_api.client import MPRester
    except ImportError:
        raise DatasetError(MISSING_EXTRA) from None
    try:
        with MPRester(api_key=key, mute_progress_bars=True) as mpr:
            docs = mpr.materials.summary.search(**criteria, fields=fields)
    except Exception as exc:
        raise DatasetError(f"Materials Project query {criteria} failed: {first_line(exc)}") from None
    out = []
    for doc in docs:
        data = doc.model_dump() if hasattr(doc, "model_dump") else dict(doc)
        item = {f: data.get(f) for f in fields}
        item["material_id"] = str(item["material_id"])
        if isinstance(item.get("structure"), Structure):
            item["structure"] = item["structure"].as_dict()
        out.append(item)
    return out


def raw_path(query: str, cache_dir: Path | None = None) -> Path:
    """Where the answer to one query is cached."""
    digest = hashlib.sha256(query.strip().encode()).hexdigest()[:16]
    return raw_dir(SOURCE, cache_dir) / f"{digest}.json.gz"


def fetch(query: str, cache_dir: Path | None = None, *, force: bool = False) -> Path:
    """Query MP (unless cached) and store the answer as JSON."""
    path = raw_path(query, cache_dir)
    if path.is_file() and not force:
        return path
    criteria = parse_query(query)
    docs = search(criteria, FIELDS)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "query": query,
        "criteria": {k: list(v) if isinstance(v, tuple) else v for k, v in criteria.items()},
        "fields": FIELDS,
        "fetched_at": datetime.now(UTC).isoformat(),
        "docs": docs,
    }
    tmp = path.with_suffix(".part")
    with gzip.open(tmp, "wt") as f:
        json.dump(payload, f)
    tmp.replace(path)
    return path


def read(path: Path, name: str, *, progress: bool = False) -> RawDataset:
    """Parse a stored answer."""
    try:
        with gzip.open(path, "rt") as f:
            payload = json.load(f)
        docs = payload["docs"]
    except Exception as exc:
        raise DatasetError(f"{path}: not a stored Materials Project answer ({first_line(exc)})") from None
    rows: list[RawRecord] = []
    for i, doc in enumerate(progress_iter(docs, "parsing Materials Project documents", progress)):
        rid = str(doc.get("material_id") or i)
        labels = {p: to_float(doc.get(p)) for p in PROPERTIES if p in doc}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = Structure.from_dict(doc["structure"])
            rows.append(RawRecord(id=rid, structure=structure, labels=labels))
        except Exception as exc:
            reason = f"structure does not parse: {first_line(exc)}"
            rows.append(RawRecord(id=rid, labels=labels, error=("malformed_structure", reason)))
    return RawDataset(name=name, source="mp", rows=rows, properties=dict(PROPERTIES), bounds=dict(BOUNDS))


def plan(arg: str, cache_dir: Path | None = None) -> SourcePlan:
    """``mp:<query>``: the stored answer, queried on first use."""
    parse_query(arg)  # a clear error before any network use
    path = fetch(arg, cache_dir)
    name = f"mp-{path.name.split('.')[0][:8]}"
    return SourcePlan(name=name, files=[path], read=lambda progress: read(path, name, progress=progress))
