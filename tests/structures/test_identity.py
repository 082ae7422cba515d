"""Structure identity: one fingerprint and one matcher for generation, pools, seeding and cleaning."""

from __future__ import annotations

from pymatgen.core import Structure

from generation import load_seeds
from structures.identity import MATCHER_SETTINGS, coarse_fingerprint, deduplicate, matcher, same_structure


def _li2o() -> Structure:
    return load_seeds(["pymatgen:Li2O"])[0].structure


def test_fingerprint_and_dedup() -> None:
    a = _li2o()
    b = a.copy()
    b.scale_lattice(a.volume * 1.05)
    b.make_supercell([1, 1, 2])
    assert coarse_fingerprint(a) == coarse_fingerprint(b)
    assert same_structure(a, b)
    na2o = a.copy()
    na2o.replace_species({"Li": "Na"})
    assert coarse_fingerprint(na2o) != coarse_fingerprint(a)
    assert deduplicate([a, b, na2o]) == [0, 2]
    assert deduplicate([b, na2o], known=[a]) == [1]


def test_one_matcher_with_the_project_tolerances() -> None:
    assert matcher() is matcher() and matcher(scale=False) is not matcher()
    assert (matcher().ltol, matcher().stol, matcher().angle_tol) == (0.2, 0.3, 5)
    assert MATCHER_SETTINGS["primitive_cell"] is True
    a = _li2o()
    b = a.copy()
    b.scale_lattice(a.volume * 2.0)  # lengths +26 %, beyond ltol
    assert matcher().fit(a, b) and not matcher(scale=False).fit(a, b)  # cleaning can compare cells as given
