"""What every source provides, and parsing helpers that turn failures into report reasons."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pymatgen.core import Composition, Structure

from ingest.records import RawDataset
from structures.sanity import cif_cell_problem

T = TypeVar("T")


def progress_iter(items: list[T], description: str, enabled: bool) -> Iterator[T]:
    """Iterate with a rich progress bar when ``enabled`` (the CLI), silently otherwise."""
    if not enabled or len(items) < 50:
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=description, transient=True)


@dataclass(frozen=True, kw_only=True)
class SourcePlan:
    """A resolved spec: the data set's name, the input files that key the cache, and how to read them."""

    name: str
    files: list[Path]
    """Inputs whose content (size and sha256) keys the processed cache."""
    read: Callable[[bool], RawDataset]
    """Reads and parses the inputs; the argument turns progress bars on."""
    params: dict[str, Any] = field(default_factory=dict)
    """Other settings that change the result (added to the cache key)."""


def safe_name(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "dataset"


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its type name when empty)."""
    text = str(exc).strip().splitlines()
    return (text[0][:limit] if text else "") or type(exc).__name__


def _cause(caught: list[warnings.WarningMessage]) -> str:
    """Why pymatgen's CIF parser gave up, from the warnings it left (it raises only "Invalid CIF file with no
    structures!"): ``" (<cause>)"``, or ``""`` when none says."""
    for warning in caught:
        lines = [line.strip() for line in str(warning.message).splitlines() if line.strip()]
        if len(lines) > 1 and lines[0].startswith("No structure parsed"):
            return f" ({lines[1][:160]})"
    return ""


def parse_structure_text(text: str, fmt: str = "cif") -> tuple[Structure | None, tuple[str, str] | None]:
    """Parse a structure from text; on failure (None, ("malformed_structure", reason))."""
    if not isinstance(text, str) or not text.strip():
        return None, ("malformed_structure", f"empty {fmt.upper()} text")
    if fmt == "cif" and (problem := cif_cell_problem(text)):
        return None, ("malformed_structure", problem)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            structure = Structure.from_str(text, fmt=fmt)  # type: ignore[arg-type]
        except Exception as exc:  # pymatgen raises ValueError, KeyError, ZeroDivisionError... on bad CIFs
            return None, ("malformed_structure", f"{fmt.upper()} does not parse: {first_line(exc)}{_cause(caught)}")
    if len(structure) == 0:
        return None, ("malformed_structure", f"{fmt.upper()} has no sites")
    return structure, None


def parse_structure_file(path: Path) -> tuple[Structure | None, tuple[str, str] | None]:
    """Parse a CIF, POSCAR/CONTCAR/vasp or pymatgen-JSON file; failures become a reason."""
    if path.suffix.lower() == ".cif":
        try:
            problem = cif_cell_problem(path.read_text(errors="replace"))
        except OSError as exc:
            return None, ("malformed_structure", f"{path.name} cannot be read: {first_line(exc)}")
        if problem:
            return None, ("malformed_structure", f"{path.name}: {problem}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            structure = Structure.from_file(path)
        except Exception as exc:
            return None, ("malformed_structure", f"{path.name} does not parse: {first_line(exc)}{_cause(caught)}")
    if len(structure) == 0:
        return None, ("malformed_structure", f"{path.name} has no sites")
    return structure, None


def parse_composition(text: str) -> tuple[Composition | None, tuple[str, str] | None]:
    """Parse a formula; failures become a reason."""
    try:
        comp = Composition(str(text))
    except Exception as exc:
        return None, ("malformed_structure", f"formula {text!r} does not parse: {first_line(exc)}")
    if comp.num_atoms <= 0:
        return None, ("malformed_structure", f"formula {text!r} is empty")
    return comp, None


def to_float(value: Any) -> float:
    """A float from a cell value; NaN for blanks and non-numbers (cleaning reports NaN labels)."""
    if value is None or isinstance(value, bool):
        return math.nan if value is None else float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
