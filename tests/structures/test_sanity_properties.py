"""Property-based tests of the structure readers and checks a user's structures go through (``screen``, ``data
load``, seeds): ``ingest.sources.base.parse_structure_text`` / ``parse_structure_file`` then
``structures.sanity.structure_problem``. Generated CIFs with any lattice (NaN, inf, 1e9, negative, zero, tiny),
any sites (unknown species, partial or impossible occupancies, overlapping atoms) and arbitrary bytes give a
structure or a one-line reason, never an exception; an accepted structure is a possible crystal, read as written."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure

from ingest.sources.base import parse_structure_file, parse_structure_text
from structures.sanity import MIN_DISTANCE, VOLUME_PER_ATOM, structure_problem

PROPERTIES = settings(
    max_examples=250, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
LENGTHS = st.one_of(
    st.floats(2.0, 12.0),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e9, 1e300, -5.0, 0.0, 1e-9, 1e-3, 0.3, 5.0]),
    st.floats(allow_nan=True, allow_infinity=True),
)
ANGLES = st.one_of(st.floats(60.0, 120.0), st.sampled_from([90.0, 0.0, 180.0, -90.0, 179.9999, 360.0, math.nan]))
SPECIES = st.sampled_from(["Li", "Na", "O", "F", "Mn", "Fe", "Xx", "D", "Og", "X", "Li+", "O2-", "Uuo", "LiF", "Lii"])
OCCUPANCIES = st.one_of(st.just(1.0), st.sampled_from([0.5, 0.0, -1.0, 2.0, 1.5, math.nan, math.inf]))
COORDS = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.5, math.nan, math.inf, -0.25, 1e300]))
SITES = st.lists(st.tuples(SPECIES, COORDS, COORDS, COORDS, OCCUPANCIES), min_size=0, max_size=6)


def _cif(
    lengths: tuple[float, ...], angles: tuple[float, ...], sites: list[tuple[str, float, float, float, float]]
) -> str:
    """A P1 CIF declaring exactly these cell parameters and sites."""
    head = "data_fuzz\n_symmetry_space_group_name_H-M 'P 1'\n_symmetry_equiv_pos_as_xyz 'x, y, z'\n"
    names = ("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma")
    head += "".join(f"_cell_{n} {v!r}\n" for n, v in zip(names, (*lengths, *angles), strict=True))
    loop = "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
    loop += "_atom_site_fract_z\n_atom_site_occupancy\n"
    rows = "".join(f"{s}{k} {s} {x!r} {y!r} {z!r} {o!r}\n" for k, (s, x, y, z, o) in enumerate(sites))
    return head + loop + rows


def _check(structure: Structure | None, reason: str) -> str:
    """The refusal reason (screen's order: the reader's, then the sanity check's); asserts it is one line."""
    problem = reason or ("no structure" if structure is None else structure_problem(structure))
    assert "\n" not in problem and "Traceback" not in problem, problem
    return problem


def _assert_possible(structure: Structure) -> None:
    """What an accepted structure must be: a finite, positive, not too thin cell of full, known, apart atoms."""
    lattice = structure.lattice
    assert all(math.isfinite(v) and v > 0 for v in (*lattice.abc, *lattice.angles, lattice.volume))
    assert VOLUME_PER_ATOM[0] <= lattice.volume / len(structure) <= VOLUME_PER_ATOM[1]
    a, b, c = lattice.matrix
    assert min(lattice.volume / np.linalg.norm(np.cross(u, v)) for u, v in ((b, c), (c, a), (a, b))) >= MIN_DISTANCE
    assert structure.is_ordered and all(0 < el.Z <= 94 for el in structure.composition.elements)
    if len(structure) > 1:
        dm = structure.distance_matrix
        assert dm[np.triu_indices(len(structure), 1)].min() >= MIN_DISTANCE


def _impossible(lengths: tuple[float, ...], angles: tuple[float, ...], sites: list[tuple]) -> bool:
    """Whether the CIF declares something no crystal has (then it must be refused, whatever else holds)."""
    if not sites:
        return True
    if not all(math.isfinite(x) and x > 0 for x in lengths) or not all(
        math.isfinite(x) and 0 < x < 180 for x in angles
    ):
        return True
    return any(not (math.isfinite(o) and o > 0) for *_, o in sites)


@PROPERTIES
@given(st.tuples(LENGTHS, LENGTHS, LENGTHS), st.tuples(ANGLES, ANGLES, ANGLES), SITES)
def test_generated_cifs_are_read_as_written_or_refused_with_a_reason(
    lengths: tuple[float, float, float], angles: tuple[float, float, float], sites: list[tuple]
) -> None:
    structure, failure = parse_structure_text(_cif(lengths, angles, sites), "cif")
    problem = _check(structure, failure[1] if failure else "")
    if _impossible(lengths, angles, sites):
        assert problem, (lengths, angles, sites)
    if problem:
        return
    assert structure is not None
    _assert_possible(structure)
    # as written: the declared cell (never relaxed nor rescaled) and every declared site (none silently dropped)
    assert np.allclose(structure.lattice.abc, lengths, rtol=1e-6) and np.allclose(structure.lattice.angles, angles)
    assert len(structure) == len(sites)
    declared = sorted({"D": "H"}.get(e, e) for e in (re.match(r"[A-Z][a-z]?", sp).group() for sp, *_ in sites))
    assert sorted(site.specie.symbol for site in structure) == declared  # no Uuo read as U


@PROPERTIES
@given(
    st.one_of(
        st.binary(max_size=400),
        st.text(max_size=400).map(str.encode),
        st.sampled_from(
            [
                b"",
                b"<html><body><h1>404 Not Found</h1></body></html>",
                b"data_x\n",
                b"data_x\n_cell_length_a 5\nloop_\n_atom_site_label\nLi\n",
                b'{"@module": "pymatgen.core.structure", "lattice": {"matrix": [[0,0,0],[0,0,0],[0,0,0]]}}',
                b"Li\n1.0\n0 0 0\n0 0 0\n0 0 0\nLi\n1\ndirect\n0 0 0\n",
                b"\x89PNG\r\n\x1a\n\x00\x00",
            ]
        ),
    ),
    st.sampled_from(["x.cif", "x.json", "x.vasp", "POSCAR", "x.poscar"]),
)
def test_any_file_content_gives_a_structure_or_a_reason(tmp_path: Path, data: bytes, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure, failure = parse_structure_file(path)
    if not _check(structure, failure[1] if failure else "") and structure is not None:
        _assert_possible(structure)
    if name.endswith(".cif"):
        text = data.decode("utf-8", errors="replace")
        structure, failure = parse_structure_text(text, "cif")
        if not _check(structure, failure[1] if failure else "") and structure is not None:
            _assert_possible(structure)


MATRIX_ENTRIES = st.one_of(st.floats(-12, 12), st.sampled_from([0.0, 1e-9, 1e9, -1e9, math.nan, math.inf, 1e300]))


@PROPERTIES
@given(
    st.lists(st.lists(MATRIX_ENTRIES, min_size=3, max_size=3), min_size=3, max_size=3),
    st.lists(st.tuples(st.sampled_from(["Li", "O", "Fe"]), st.lists(COORDS, min_size=3, max_size=3)), max_size=5),
)
def test_any_lattice_matrix_is_accepted_only_when_possible(matrix: list[list[float]], sites: list[tuple]) -> None:
    """Structures built directly (pymatgen JSON, POSCAR, generators): any matrix, even singular or 1e9 x 1e-9."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            structure = Structure(Lattice(matrix), [s for s, _ in sites], [c for _, c in sites])
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError, OverflowError):
            return  # pymatgen refuses to build it: nothing reaches a reader
        problem = structure_problem(structure)
    assert "\n" not in problem
    if not problem:
        _assert_possible(structure)


@pytest.mark.parametrize(
    ("lattice", "species", "coords", "reason"),
    [
        # a plausible volume (5 Å³/atom) in a 1e-9 Å thin cell: accepted before the fix, then OOM building the
        # neighbour list of a relaxation
        (Lattice.from_parameters(1e9, 1e-9, 5, 90, 90, 90), ["Li"], [[0, 0, 0]], "thin"),
        (Lattice.cubic(5), ["Li", "F"], [[0, 0, 0], [0, 0, 0]], "overlap"),  # accepted before the fix
        (Lattice.cubic(5), ["Li", "F"], [[0, 0, 0], [0.98, 0, 0]], "overlap"),  # 0.1 Å across the boundary
        (Lattice.cubic(1e9), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]], "Å³/atom"),
        (Lattice.cubic(5), ["Li"], [[math.nan, 0, 0]], "non-finite"),
    ],
)
def test_impossible_structures_are_refused(lattice: Lattice, species: list[str], coords: list, reason: str) -> None:
    assert reason in structure_problem(Structure(lattice, species, coords))


@pytest.mark.parametrize(
    ("occupancy", "reason"),
    [("-1", "positive number"), ("nan", "positive number"), ("0", "positive number"), ("abc", "not a number")],
)
def test_impossible_site_values_are_refused(occupancy: str, reason: str) -> None:
    """pymatgen silently drops a site of occupancy -1 or NaN (LiF read as F): refused (accepted before the fix)."""
    text = _cif((4.03, 4.03, 4.03), (90, 90, 90), [("Li", 0, 0, 0, 1.0), ("F", 0.5, 0.5, 0.5, 1.0)])
    assert "Li0 Li 0 0 0 1.0\n" in text
    text = text.replace("Li0 Li 0 0 0 1.0\n", f"Li0 Li 0 0 0 {occupancy}\n")
    structure, failure = parse_structure_text(text, "cif")
    assert structure is None and failure is not None and reason in failure[1]


@pytest.mark.parametrize("symbol", ["Uuo", "LiF", "Lii", "Oxygen"])
def test_site_types_that_name_no_element_are_refused(symbol: str) -> None:
    """pymatgen reads type ``Uuo`` as U and ``LiF`` as Li: refused with the symbol instead (accepted before the fix)."""
    text = _cif((4.03, 4.03, 4.03), (90, 90, 90), [(symbol, 0, 0, 0, 1.0), ("F", 0.5, 0.5, 0.5, 1.0)])
    structure, failure = parse_structure_text(text, "cif")
    assert structure is None and failure is not None and f"_atom_site_type_symbol {symbol!r}" in failure[1]
