"""The store contract: a backend stores what it is given and answers queries as MongoDB does.

One suite, run on mongomock, on the embedded nx-27017 server and (with ``BATTERY_DISCOVERY_TEST_MONGO_URI``) on a
real MongoDB. Types are compared exactly (``True`` is not ``1``, a datetime is not its string). Datetimes come back
as pymongo returns them: naive UTC, truncated to milliseconds (``tz_aware=True``: aware UTC). Where a backend
genuinely differs from MongoDB the single case is ``xfail(strict=True)`` for that backend only (see
``docs/store-servers.md``); the project's code works around each of those.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pymongo
import pytest
from bson.codec_options import CodecOptions
from bson.int64 import Int64
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from store.documents import (
    BatchEntry,
    CandidateDoc,
    EvaluationDoc,
    ModelDoc,
    Provenance,
    RoundDoc,
    oracle_summary,
)
from store.repository import CandidateStore

from .conftest import EMBEDDED, backend_params

Db = Database[dict[str, Any]]

# --------------------------------------------------------------------------------------------- helpers

WHEN = datetime(2026, 3, 4, 5, 6, 7, 891_234, tzinfo=UTC)
WHEN_PLUS2 = datetime(2026, 3, 4, 9, 0, 0, 500_999, tzinfo=timezone(timedelta(hours=2)))


def as_stored(value: Any) -> Any:
    """``value`` as pymongo (``tz_aware=False``) reads it back: datetimes naive UTC in whole milliseconds, tuples
    as lists."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if isinstance(value, dict):
        return {k: as_stored(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_stored(v) for v in value]
    return value


def assert_same(got: Any, expected: Any, path: str = "") -> None:
    """Equal values of identical types, recursively (``True`` != ``1``, ``1`` != ``1.0``, keys as sets)."""
    where = path or "<document>"
    if isinstance(expected, dict):
        assert isinstance(got, dict), f"{where}: {got!r} is not a document"
        assert set(got) == set(expected), f"{where}: keys {sorted(got)} != {sorted(expected)}"
        for key in expected:
            assert_same(got[key], expected[key], f"{path}.{key}" if path else key)
    elif isinstance(expected, list):
        assert isinstance(got, list), f"{where}: {got!r} is not a list"
        assert len(got) == len(expected), f"{where}: {got!r} != {expected!r}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_same(g, e, f"{where}[{i}]")
    else:
        kind = int if type(got) is Int64 else type(got)  # pymongo reads 64-bit integers as bson.Int64
        assert kind is type(expected), f"{where}: {got!r} ({type(got).__name__}) != {expected!r}"
        assert got == expected, f"{where}: {got!r} != {expected!r}"
        if isinstance(expected, datetime):
            assert got.tzinfo == expected.tzinfo, f"{where}: tzinfo {got.tzinfo} != {expected.tzinfo}"


def sample(key: int = 1) -> dict[str, Any]:
    """A document with every type the project stores, nested and in lists."""
    return {
        "_id": key,
        "when": WHEN,
        "when_plus2": WHEN_PLUS2,
        "yes": True,
        "no": False,
        "count": 7,
        "big": 2**40,
        "zero": 0,
        "ratio": 1.5,
        "whole_float": 2.0,
        "text": "LiFePO4",
        "empty": "",
        "nothing": None,
        "nested": {"when": WHEN, "flag": True, "n": 3, "x": -0.25, "none": None, "deep": {"off": False, "k": [1, 2]}},
        "items": [WHEN, True, False, 2, 2.5, None, "s", [1, [True]], {"flag": False, "n": 0}],
        "empty_list": [],
        "empty_doc": {},
    }


FIELDS = {k: v for k, v in sample().items() if k != "_id"}

# ------------------------------------------------------------------------------------ writes keep types


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_insert_one_keeps_types(db: Db) -> None:
    db.x.insert_one(sample())
    assert_same(db.x.find_one({"_id": 1}), as_stored(sample()))


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_insert_many_keeps_types(db: Db) -> None:
    db.x.insert_many([sample(1), sample(2)])
    assert [d["_id"] for d in db.x.find().sort("_id", 1)] == [1, 2]
    for key in (1, 2):
        assert_same(db.x.find_one({"_id": key}), as_stored(sample(key)))


@pytest.mark.parametrize(
    "db",
    backend_params(
        nx_27017="$set on an existing document stores datetimes as strings and booleans as 0/1 (top-level and "
        "dotted paths; whole sub-documents keep their types)"
    ),
    indirect=True,
)
def test_set_top_level_keeps_types(db: Db) -> None:
    db.x.insert_one({"_id": 1, "count": "old"})
    db.x.update_one({"_id": 1}, {"$set": FIELDS})
    assert_same(db.x.find_one({"_id": 1}), as_stored(sample()))


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_set_of_whole_sub_documents_keeps_types(db: Db) -> None:
    """What the repository relies on: ``$set`` of a whole sub-document (``oracle``, ``hull``) keeps nested types."""
    db.x.insert_one({"_id": 1})
    db.x.update_one({"_id": 1}, {"$set": {"nested": FIELDS["nested"], "items": FIELDS["items"]}})
    assert_same(db.x.find_one({"_id": 1}), as_stored({"_id": 1, "nested": FIELDS["nested"], "items": FIELDS["items"]}))


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_set_strings_and_numbers_keeps_types(db: Db) -> None:
    """What the repository ``$set``s at the top level: strings, ints, floats, None."""
    db.x.insert_one({"_id": 1, "status": "generated"})
    db.x.update_one({"_id": 1}, {"$set": {"status": "evaluated", "round": 3, "e": -1.25, "by": None}})
    assert_same(db.x.find_one({"_id": 1}), {"_id": 1, "status": "evaluated", "round": 3, "e": -1.25, "by": None})


@pytest.mark.parametrize(
    "db",
    backend_params(nx_27017="$set of a dotted path stores datetimes as strings and booleans as 0/1"),
    indirect=True,
)
def test_set_dotted_keeps_types(db: Db) -> None:
    db.x.insert_one({"_id": 1, "nested": {"keep": "me"}})
    db.x.update_one(
        {"_id": 1}, {"$set": {"nested.when": WHEN, "nested.flag": True, "nested.n": 3, "nested.off": False}}
    )
    expected = {"_id": 1, "nested": {"keep": "me", "when": WHEN, "flag": True, "n": 3, "off": False}}
    assert_same(db.x.find_one({"_id": 1}), as_stored(expected))


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_set_dotted_numbers_and_strings_keep_types(db: Db) -> None:
    db.x.insert_one({"_id": 1, "nested": {"keep": "me"}})
    db.x.update_one({"_id": 1}, {"$set": {"nested.n": 3, "nested.x": 0.5, "nested.s": "t", "new.deep.n": 1}})
    expected = {"_id": 1, "nested": {"keep": "me", "n": 3, "x": 0.5, "s": "t"}, "new": {"deep": {"n": 1}}}
    assert_same(db.x.find_one({"_id": 1}), expected)


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_set_on_insert_upsert_keeps_types_and_leaves_existing_alone(db: Db) -> None:
    result = db.x.update_one({"_id": 1}, {"$setOnInsert": FIELDS}, upsert=True)
    assert result.upserted_id == 1
    assert_same(db.x.find_one({"_id": 1}), as_stored(sample()))
    again = db.x.update_one({"_id": 1}, {"$setOnInsert": {"count": 99, "text": "other"}}, upsert=True)
    assert again.upserted_id is None and again.matched_count == 1
    assert_same(db.x.find_one({"_id": 1}), as_stored(sample()))


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_inc_keeps_numeric_types(db: Db) -> None:
    db.x.insert_one({"_id": 1, "n": 1, "x": 0.5, "nested": {"n": 10}})
    db.x.update_one({"_id": 1}, {"$inc": {"n": 2, "x": 1.0, "nested.n": -3, "fresh": 5}})
    db.x.update_one({"_id": 1}, {"$inc": {"n": 1}})
    assert_same(db.x.find_one({"_id": 1}), {"_id": 1, "n": 4, "x": 1.5, "nested": {"n": 7}, "fresh": 5})


@pytest.mark.parametrize(
    "db",
    backend_params(nx_27017="$push stores datetimes and sub-documents as JSON strings and booleans as 0/1"),
    indirect=True,
)
def test_push_keeps_types(db: Db) -> None:
    db.x.insert_one({"_id": 1, "items": ["a"]})
    for value in (WHEN, True, 3, {"flag": False, "when": WHEN}, None):
        db.x.update_one({"_id": 1}, {"$push": {"items": value}})
    db.x.update_one({"_id": 1}, {"$push": {"fresh": 1}})
    expected = {"_id": 1, "items": ["a", WHEN, True, 3, {"flag": False, "when": WHEN}, None], "fresh": [1]}
    assert_same(db.x.find_one({"_id": 1}), as_stored(expected))


@pytest.mark.parametrize(
    "db",
    backend_params(nx_27017="replace_one(upsert=True) ignores the _id of the filter and inserts a new ObjectId"),
    indirect=True,
)
def test_replace_one_upsert_takes_the_id_of_the_filter(db: Db) -> None:
    result = db.x.replace_one({"_id": "c-1"}, {"v": 1, "when": WHEN, "yes": True}, upsert=True)
    assert result.upserted_id == "c-1"
    assert_same(list(db.x.find()), [as_stored({"_id": "c-1", "v": 1, "when": WHEN, "yes": True})])


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_replace_one_of_an_existing_document_keeps_types(db: Db) -> None:
    db.x.insert_one({"_id": 1, "old": "gone"})
    assert db.x.replace_one({"_id": 1}, FIELDS).modified_count == 1
    assert_same(db.x.find_one({"_id": 1}), as_stored(sample()))


@pytest.mark.parametrize(
    "db",
    backend_params(nx_27017="find_one_and_update's $set stores datetimes as strings and booleans as 0/1"),
    indirect=True,
)
def test_find_one_and_update_keeps_types(db: Db) -> None:
    db.x.insert_one({"_id": 1, "n": 1})
    after = db.x.find_one_and_update(
        {"_id": 1}, {"$set": {"when": WHEN, "yes": True}, "$inc": {"n": 1}}, return_document=ReturnDocument.AFTER
    )
    expected = as_stored({"_id": 1, "n": 2, "when": WHEN, "yes": True})
    assert_same(after, expected)
    assert_same(db.x.find_one({"_id": 1}), expected)


@pytest.mark.parametrize(
    "db",
    backend_params(nx_27017="find_one_and_update(upsert=True) ignores $setOnInsert: the new document has its _id only"),
    indirect=True,
)
def test_find_one_and_update_upsert_applies_set_on_insert(db: Db) -> None:
    before = db.x.find_one_and_update({"_id": "k"}, {"$setOnInsert": {"owner": "a", "n": 1}}, upsert=True)
    assert before is None
    after = db.x.find_one_and_update(
        {"_id": "k"}, {"$set": {"owner": "b"}, "$inc": {"n": 1}}, return_document=ReturnDocument.AFTER
    )
    assert_same(after, {"_id": "k", "owner": "b", "n": 2})


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_tz_aware_client_reads_aware_utc(db: Db) -> None:
    db.x.insert_one({"_id": 1, "when": WHEN_PLUS2, "nested": {"when": WHEN}})
    doc = db.x.with_options(codec_options=CodecOptions(tz_aware=True)).find_one({"_id": 1})
    assert doc is not None
    assert doc["when"] == WHEN_PLUS2.replace(microsecond=500_000) and doc["when"].utcoffset() == timedelta(0)
    nested = doc["nested"]["when"]
    assert nested == WHEN.replace(microsecond=891_000) and nested.utcoffset() == timedelta(0)


# --------------------------------------------------------------------------------------------- queries


def _ids(cursor: Any) -> list[Any]:
    return sorted(d["_id"] for d in cursor)


@pytest.fixture
def people(db: Db) -> Db:
    """Six documents with present, null and missing fields, arrays and numbers."""
    db.x.insert_many(
        [
            {"_id": 1, "f": 1, "tags": ["Li", "O"], "x": 5, "s": "LiFePO4", "p": {"gap": {"mean": 1.0}}},
            {"_id": 2, "f": None, "tags": ["Na", "O"], "x": 1, "s": "NaFePO4", "p": {"gap": {"mean": 3.0}}},
            {"_id": 3, "tags": ["Li", "Fe", "O", "P"], "x": 9, "s": "LiO2", "p": {}},
            {"_id": 4, "f": 0, "tags": [], "x": 3.5, "s": "Fe2O3", "p": {"gap": {"mean": 2.0}}},
            {"_id": 5, "f": "a", "tags": ["Li"], "x": 7, "s": "Li", "p": {"gap": {"mean": 0.5}}},
            {"_id": 6, "f": False, "x": -2, "s": "Na", "p": {"gap": {"mean": None}}},
        ]
    )
    db.x.create_index([("tags", 1)])
    db.x.create_index([("x", 1)])
    db.x.create_index([("p.gap.mean", 1)])
    return db


@pytest.mark.parametrize(
    "db",
    backend_params(nx_27017="{'$ne': None} also matches documents that lack the field"),
    indirect=True,
)
def test_ne_none_matches_neither_null_nor_missing(people: Db) -> None:
    assert _ids(people.x.find({"f": {"$ne": None}})) == [1, 4, 5, 6]


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_eq_none_matches_null_and_missing(people: Db) -> None:
    assert _ids(people.x.find({"f": None})) == [2, 3]


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_exists(people: Db) -> None:
    assert _ids(people.x.find({"x": {"$exists": True}})) == [1, 2, 3, 4, 5, 6]
    assert _ids(people.x.find({"p.gap": {"$exists": False}})) == [3]
    assert _ids(people.x.find({"p.gap": {"$exists": True}})) == [1, 2, 4, 5, 6]
    assert _ids(people.x.find({"nowhere": {"$exists": False}})) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "db", backend_params(nx_27017="$exists treats a field whose value is null as missing"), indirect=True
)
def test_exists_counts_null_values_as_present(people: Db) -> None:
    assert _ids(people.x.find({"f": {"$exists": True}})) == [1, 2, 4, 5, 6]
    assert _ids(people.x.find({"f": {"$exists": False}})) == [3]


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_type_number(people: Db) -> None:
    """``$type: "number"`` (the repository's stand-in for ``$ne: None``) leaves out null, missing and booleans."""
    assert _ids(people.x.find({"f": {"$type": "number"}})) == [1, 4]
    assert _ids(people.x.find({"p.gap.mean": {"$type": "number"}})) == [1, 2, 4, 5]


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_in_on_scalars_and_arrays(people: Db) -> None:
    assert _ids(people.x.find({"x": {"$in": [1, 9, 100]}})) == [2, 3]
    assert _ids(people.x.find({"tags": {"$in": ["Na", "P"]}})) == [2, 3]
    assert _ids(people.x.find({"_id": {"$in": [5, 1, 42]}})) == [1, 5]


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_nin_keeps_documents_without_the_field(people: Db) -> None:
    assert _ids(people.x.find({"f": {"$nin": [None, "a"]}})) == [1, 4, 6]
    assert _ids(people.x.find({"tags": {"$nin": ["O"]}})) == [4, 5, 6]


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_all_on_arrays(people: Db) -> None:
    assert _ids(people.x.find({"tags": {"$all": ["Li", "O"]}})) == [1, 3]
    assert _ids(people.x.find({"tags": {"$all": ["Li"]}})) == [1, 3, 5]
    assert _ids(people.x.find({"tags": {"$all": ["Li", "Na"]}})) == []
    assert _ids(people.x.find({"tags": {"$all": ["O"], "$in": ["Na", "Fe"]}})) == [2, 3]


@pytest.mark.parametrize(
    "db",
    backend_params(
        nx_27017="a bare value does not match inside an indexed array field (the index compares the whole array); "
        "store.browse uses $in/$all"
    ),
    indirect=True,
)
def test_bare_value_matches_array_elements(people: Db) -> None:
    assert _ids(people.x.find({"tags": "Li"})) == [1, 3, 5]
    assert _ids(people.x.find({"tags": "P"})) == [3]


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_bare_value_matches_elements_of_an_unindexed_array(db: Db) -> None:
    db.x.insert_many(
        [{"_id": 1, "tags": ["Li", "O"]}, {"_id": 2, "tags": ["Na"]}, {"_id": 3, "tags": "Li"}, {"_id": 4}]
    )
    assert _ids(db.x.find({"tags": "Li"})) == [1, 3]


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_range_sort_skip_limit(people: Db) -> None:
    cursor = people.x.find({"x": {"$gte": 1, "$lt": 9}}).sort([("x", -1), ("_id", 1)]).skip(1).limit(2)
    assert [d["_id"] for d in cursor] == [1, 4]  # x: 7 (5), 5 (1), 3.5 (4), 1 (2); skip one, take two
    cursor = people.x.find({"p.gap.mean": {"$gte": 0.6, "$lte": 1e300}}).sort("p.gap.mean", 1)
    assert [d["_id"] for d in cursor] == [1, 4, 2]


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_sort_puts_missing_and_null_first(people: Db) -> None:
    assert [d["_id"] for d in people.x.find({}, {"_id": 1}).sort([("p.gap.mean", 1), ("_id", 1)])] == [3, 6, 5, 1, 4, 2]


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_regex_prefix(people: Db) -> None:
    assert _ids(people.x.find({"s": {"$regex": "^LiFe"}})) == [1]
    assert _ids(people.x.find({"s": {"$regex": "^Na"}})) == [2, 6]


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_count_documents_and_distinct(people: Db) -> None:
    assert people.x.count_documents({"tags": {"$all": ["O"]}, "x": {"$gt": 2}}) == 2
    assert people.x.count_documents({}) == 6
    assert people.x.count_documents({"x": {"$gte": 0}}, limit=2) == 2
    assert people.x.estimated_document_count() == 6
    assert sorted(people.x.distinct("tags")) == ["Fe", "Li", "Na", "O", "P"]


@pytest.mark.parametrize(
    "db",
    backend_params(
        nx_27017="a projection of a dotted path returns the dotted key ('p.gap.mean') instead of the nested "
        "document (store.browse.field_value reads both)"
    ),
    indirect=True,
)
def test_projection_of_a_dotted_path_is_nested(people: Db) -> None:
    assert people.x.find_one({"_id": 1}, {"p.gap.mean": 1, "_id": 0}) == {"p": {"gap": {"mean": 1.0}}}


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_exclusion_projection(people: Db) -> None:
    assert people.x.find_one({"_id": 1}, {"tags": 0, "p": 0, "s": 0}) == {"_id": 1, "f": 1, "x": 5}


@pytest.mark.parametrize(
    "db",
    backend_params(nx_27017="an exclusion projection that also names '_id': 1 returns the _id alone"),
    indirect=True,
)
def test_exclusion_projection_may_include_the_id(people: Db) -> None:
    assert people.x.find_one({"_id": 1}, {"tags": 0, "p": 0, "s": 0, "_id": 1}) == {"_id": 1, "f": 1, "x": 5}


# ------------------------------------------------------------------------------------------ unique keys


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_duplicate_id_raises(db: Db) -> None:
    db.x.insert_one({"_id": "c-1", "v": 1})
    with pytest.raises(DuplicateKeyError):
        db.x.insert_one({"_id": "c-1", "v": 2})
    with pytest.raises(BulkWriteError):
        db.x.insert_many([{"_id": "c-2"}, {"_id": "c-1"}], ordered=True)
    assert db.x.find_one({"_id": "c-1"}) == {"_id": "c-1", "v": 1}
    assert db.x.count_documents({}) == 2


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_unique_index_violation_raises(db: Db) -> None:
    db.rounds.create_index([("campaign", 1), ("round", 1)], unique=True)
    db.rounds.insert_one({"_id": "a:1", "campaign": "a", "round": 1})
    db.rounds.insert_one({"_id": "a:2", "campaign": "a", "round": 2})
    with pytest.raises(DuplicateKeyError):
        db.rounds.insert_one({"_id": "other", "campaign": "a", "round": 1})
    with pytest.raises(DuplicateKeyError):
        db.rounds.update_one({"_id": "a:2"}, {"$set": {"round": 1}})
    assert _ids(db.rounds.find()) == ["a:1", "a:2"]


# ------------------------------------------------------------------------ the repository round-trips


def _provenance(round_: int = 2) -> Provenance:
    return Provenance(
        campaign="c",
        round=round_,
        code_version="0.9.0",
        created_at=WHEN,
        model_version="c-r1",
        acquisition={"kind": "ucb", "beta": 2.0, "diverse": True, "k": 8, "none": None},
        oracle="chgnet",
        oracle_version="chgnet 0.3.0",
    )


def _candidate(cid: str = "c-abc") -> CandidateDoc:
    return CandidateDoc(
        _id=cid,
        campaign="c",
        fingerprint="abc",
        formula="LiFePO4",
        elements=["Fe", "Li", "O", "P"],
        chemsys="Fe-Li-O-P",
        n_sites=7,
        structure={
            "@module": "pymatgen.core.structure",
            "lattice": {"matrix": [[4.1, 0.0, 0.0], [0.0, 5.2, 0.0], [0.0, 0.0, 6.3]], "pbc": [True, True, False]},
            "sites": [{"species": [{"element": "Li", "occu": 1}], "abc": [0.0, 0.5, 0.25], "properties": {}}],
            "charge": 0,
        },
        source="substitution",
        labels={"heat_all": -2.5},
        parent="seed-1",
        substitutions={"Na": "Li"},
        probability=0.125,
        generator="substitution",
        generator_version="v1",
        parents=["seed-1", "seed-2"],
        parameters={"spacegroup": 62, "wyckoff": ["4a", "4c"], "symmetrize": False, "tol": 0.1, "none": None},
        condition="band_gap >= 3",
        predictions={"band_gap": {"mean": 3.25, "std": 0.5}, "e_above_hull": {"mean": -0.02, "std": 0.01}},
        predicted_by="c-r1",
        predicted_round=2,
        provenance=_provenance(),
    )


def _evaluation(candidate: CandidateDoc) -> EvaluationDoc:
    return EvaluationDoc.for_candidate(
        candidate,
        oracle_key="chgnet:fmax0.05",
        provenance=_provenance(),
        status="converged",
        reason="",
        energy_total=-45.5,
        energy_per_atom=-6.5,
        corrected_energy_per_atom=-6.5,
        energy_correction_per_atom=0.0,
        correction_scheme="none (already MP2020)",
        formation_energy_per_atom=-2.25,
        max_force=0.04,
        n_steps=37,
        energy_trajectory=[-6.0, -6.25, -6.5],
        volume_change=0.0125,
        relaxed_structure={"sites": [], "lattice": {"pbc": [True, True, True]}},
        potential="chgnet",
        potential_version="0.3.0",
        fmax=0.05,
        max_steps=500,
        elapsed_s=12.5,
        labels={"heat_all": -2.5},
    )


def _model_dump(doc: Any) -> dict[str, Any]:
    return as_stored(doc.model_dump(mode="python", by_alias=True))


def _check_fields(got: Any, expected: Any) -> None:
    """``got`` (read back) equals ``expected`` (written) field by field, types included, datetimes as stored."""
    assert type(got) is type(expected)
    want, have = _model_dump(expected), got.model_dump(mode="python", by_alias=True)
    for name in type(expected).model_fields:
        key = type(expected).model_fields[name].alias or name
        assert_same(have[key], want[key], key)


@pytest.fixture
def repo(db: Db) -> CandidateStore:
    store = CandidateStore(db)
    store.ensure_indexes()
    return store


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_candidate_round_trips(repo: CandidateStore) -> None:
    written = _candidate()
    assert repo.insert_candidate(written)
    assert not repo.insert_candidate(written)  # the id is taken: nothing written
    (read,) = repo.get_candidates([written.id])
    _check_fields(read, written)
    assert_same(repo.candidates.find_one({"_id": written.id}), as_stored(written.to_mongo()))


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_candidate_updates_round_trip(repo: CandidateStore) -> None:
    written = _candidate()
    repo.insert_candidate(written)
    predictions = {"band_gap": {"mean": 4.0, "std": 0.25}, "log10_conductivity": {"mean": -4.5, "std": 1.0}}
    repo.set_predictions({written.id: predictions}, model_version="c-r2", round_index=3)
    repo.set_status([written.id], "acquired")
    (read,) = repo.get_candidates([written.id])
    expected = written.model_copy(
        update={"predictions": predictions, "predicted_by": "c-r2", "predicted_round": 3, "status": "acquired"}
    )
    _check_fields(read, expected)


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_evaluation_round_trips_with_its_candidate_summary(repo: CandidateStore) -> None:
    candidate = _candidate()
    repo.insert_candidate(candidate)
    evaluation = _evaluation(candidate)
    repo.put_evaluation(evaluation)
    repo.put_evaluation(evaluation)  # a re-run replaces, never duplicates
    hull = {"n_phases": 12, "sources": {"mp20": 10, "campaign": 2}, "thin": False, "hull_formation_energy": -2.2}
    repo.set_hull(evaluation.id, -0.015, {"LiFePO4": 1.0}, hull)
    properties = {"band_gap": {"mean": 3.5, "std": 0.25, "model": "gap-v2"}}
    repo.set_evaluation_properties(evaluation.id, properties)
    electrode = {"status": "ok", "average_voltage": 3.4, "capacity_mAh_g": 170.0, "n_ions": 1, "reversible": True}
    repo.set_electrode(evaluation.id, electrode)
    window = {"low_V": 2.75, "high_V": 4.25, "products": ["Li3PO4", "Fe2O3"], "thin": True}
    repo.set_window(evaluation.id, window)
    transport = {"D_cm2_s": 1.5e-7, "temperature_K": 600, "caveat": "one run"}
    repo.set_transport(evaluation.id, transport)

    expected = evaluation.model_copy(
        update={
            "energy_above_hull": -0.015,
            "decomposition": {"LiFePO4": 1.0},
            "hull": hull,
            "properties": properties,
            "electrode": electrode,
            "window": window,
            "transport": transport,
        }
    )
    got = repo.get_evaluations([candidate.id], "chgnet:fmax0.05")
    assert list(got) == [candidate.id]
    _check_fields(got[candidate.id], expected)
    assert repo.counts()["evaluations"] == 1

    (marked,) = repo.get_candidates([candidate.id])
    assert marked.status == "evaluated"
    summary = oracle_summary(expected.to_mongo())
    assert summary["hull_thin"] is False and summary["e_above_hull"] == -0.015
    assert_same(repo.candidates.find_one({"_id": candidate.id})["oracle"], summary)
    assert [e.candidate_id for e in repo.query(elements=["Li", "O"], max_e_above_hull=0.0)] == [candidate.id]


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_round_round_trips(repo: CandidateStore) -> None:
    entry = BatchEntry(
        candidate_id="c-abc",
        formula="LiFePO4",
        n_sites=7,
        mean=-0.5,
        std=0.125,
        acquisition_value=1.75,
        means={"e_above_hull": -0.5},
        stds={"e_above_hull": 0.125},
        status="converged",
        formation_energy_per_atom=-2.25,
    )
    running = RoundDoc(
        _id="c:2",
        campaign="c",
        round=2,
        started_at=WHEN,
        config={"campaign": "c", "rounds": 3, "oracle": {"batch_size": 4, "md": {"enabled": False}}, "seed": None},
        code_version="0.9.0",
        n_generated=40,
        n_pool=120,
        generation={"substitution": {"quota": 20, "produced": 25, "new": 18}},
        acquired=[entry, BatchEntry(candidate_id="c-def", formula="Li2O", n_sites=3)],
        prediction_model="c-r1",
        acquisition_notes=["logei -> ucb"],
    )
    repo.save_round(running)
    completed = running.model_copy(
        update={
            "status": "completed",
            "completed_at": WHEN + timedelta(minutes=5),
            "n_evaluated": 2,
            "n_failed": 0,
            "trained_model": "c-r2",
            "model_metrics": {"mae": 0.05, "n": 40, "converged": True},
            "timings": {"generate": 1.5, "oracle": 30.0},
            "flow_run_id": "f-1",
            "best": [{"id": "c-abc", "formation_energy_per_atom": -2.25, "thin": False}],
            "metrics": {"n_targets_found": 1, "n_labelled": 2, "done": False},
        }
    )
    repo.save_round(completed)  # a re-run rewrites the whole document
    got = repo.get_round("c", 2)
    assert got is not None
    _check_fields(got, completed)
    assert [r.id for r in repo.list_rounds("c")] == ["c:2"]
    assert repo.completed_round_metrics("c") == {2: as_stored(completed.metrics)}


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_model_round_trips(repo: CandidateStore) -> None:
    model = ModelDoc(
        _id="gap-v2",
        campaign="models:gap",
        round=2,
        property_name="band_gap",
        architecture="megnet",
        n_members=4,
        path="/models/gap-v2",
        n_train=1200,
        metrics={"mae": 0.31, "r2": 0.8, "per_split": {"test": {"mae": 0.33}}},
        config={"epochs": 50, "early_stop": True},
        created_at=WHEN_PLUS2,
        name="gap",
        version=2,
        unit="band gap (eV)",
        hyperparameters={"lr": 0.001, "cutoff": 5.0},
        dataset="mp20:/data/val.csv",
        data_hash="abc123",
        split={"seed": 0, "sizes": [1000, 100, 100], "shuffle": True},
    )
    repo.register_model(model)
    repo.register_model(model)
    got = repo.get_model("gap-v2")
    assert got is not None
    _check_fields(got, model)
    assert repo.counts()["models"] == 1


@pytest.mark.parametrize("db", backend_params(), indirect=True)
def test_repository_queries(repo: CandidateStore) -> None:
    base = _candidate()
    docs = []
    kinds = [("generated", "seed", 0), ("generated", "substitution", 1), ("acquired", "pyxtal", 1)]
    for i, (status, source, rnd) in enumerate([*kinds, ("evaluated", "substitution", 2)]):
        docs.append(
            base.model_copy(
                update={
                    "id": f"c-{i}",
                    "fingerprint": f"fp{i % 2}",
                    "status": status,
                    "source": source,
                    "provenance": base.provenance.model_copy(update={"round": rnd}),
                }
            )
        )
    assert repo.insert_candidates(docs) == 4
    assert repo.pending_ids("c") == ["c-0", "c-1", "c-2"]
    assert repo.candidate_ids("c", "seed") == ["c-0"]
    assert repo.count_generated("c", 1) == 2 and repo.generated_ids("c", 1) == ["c-1", "c-2"]
    assert sorted(c.id for c in repo.find_by_fingerprints("c", ["fp1"])) == ["c-1", "c-3"]
    assert [b["_id"] for b in repo.candidate_briefs(["c-3", "nope", "c-0"])] == ["c-3", "c-0"]
    assert repo.missing_oracle_summaries()  # c-3 is evaluated without a summary


# ----------------------------------------------------------------------------------------- this suite


@pytest.mark.slow
def test_the_embedded_backend_is_the_project_server(embedded_uri: str) -> None:
    """The contract runs against nx-27017 as ``store.embedded`` starts it, not some other server."""
    with pymongo.MongoClient(embedded_uri, serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command("ping")["ok"] == 1
    from store.embedded import running_servers

    port = embedded_uri.rsplit(":", 1)[1].strip("/")
    assert any(s["port"] == port for s in running_servers())


def test_deviation_marks_are_per_backend() -> None:
    params = {p.id: p for p in backend_params(nx_27017="reason")}
    assert set(params) == {"mongomock", EMBEDDED, "mongodb"}
    assert any(m.name == "xfail" and m.kwargs["strict"] for m in params[EMBEDDED].marks)
    assert not any(m.name == "xfail" for m in params["mongomock"].marks)
    with pytest.raises(ValueError, match="unknown backends"):
        backend_params(mysql="no")
