"""Exports of the candidates table: CSV, JSON and a zip of CIFs, as bytes (pure functions of table rows)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from collections.abc import Sequence
from typing import Any

from store.browse import COLUMNS

#: Columns written to CSV and JSON, in order (units in store.browse.COLUMNS).
EXPORT_COLUMNS: tuple[str, ...] = (*(c.name for c in COLUMNS), "campaign", "hull_thin")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rows_csv(rows: Sequence[dict[str, Any]]) -> bytes:
    """One line per row with :data:`EXPORT_COLUMNS` (no structures)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(EXPORT_COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if _clean(row.get(k)) is None else row.get(k) for k in EXPORT_COLUMNS})
    return buffer.getvalue().encode()


def rows_json(rows: Sequence[dict[str, Any]]) -> bytes:
    """A JSON list of rows with :data:`EXPORT_COLUMNS` and the ``structure`` (pymatgen dict, Å)."""
    out = [{**{k: _clean(row.get(k)) for k in EXPORT_COLUMNS}, "structure": row.get("structure")} for row in rows]
    return json.dumps(out, indent=1, default=str).encode()


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]


def cif_zip(rows: Sequence[dict[str, Any]]) -> bytes:
    """A zip with one ``<id>_<formula>.cif`` per row that has a structure, plus ``candidates.csv``; a structure
    that cannot be written as CIF is listed in ``skipped.txt`` with the reason."""
    from pymatgen.core import Structure
    from pymatgen.io.cif import CifWriter

    buffer = io.BytesIO()
    skipped = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for row in rows:
            if not row.get("structure"):
                skipped.append(f"{row.get('id')}: no structure")
                continue
            try:
                text = str(CifWriter(Structure.from_dict(row["structure"])))
            except Exception as exc:
                skipped.append(f"{row.get('id')}: {type(exc).__name__}: {exc}")
                continue
            archive.writestr(f"{_safe_name(str(row.get('id')))}_{_safe_name(str(row.get('formula')))}.cif", text)
        archive.writestr("candidates.csv", rows_csv(rows))
        if skipped:
            archive.writestr("skipped.txt", "\n".join(skipped) + "\n")
    return buffer.getvalue()
