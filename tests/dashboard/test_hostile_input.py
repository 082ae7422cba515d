"""Hostile dashboard URLs and filter values: each gives a page or a clear message, never a stack trace, and no
user text reaches the store as an operator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.app import create_app
from store.browse import CandidateQuery, candidate_filter

HOSTILE = [
    "",
    "/candidate/",
    "/candidate/%7B%22%24gt%22%3A%22%22%7D",  # {"$gt": ""}
    '/candidate/{"$ne": null}',
    "/candidate/../../etc/passwd",
    "/candidate/" + "x" * 10_000,
    "/candidate/\x00\x01",
    "/candidate/%ZZ",
    "/candidate/李",
    "/nope",
    "//",
    "/candidates",
    "/rounds",
    "/models",
]
SEARCHES = [
    "",
    "?where=__import__('os').system('x')",
    "?where=" + "(" * 5000,
    "?campaign[$ne]=1",
    "?page=-1&sort=$where",
]


@pytest.fixture(scope="module")
def client() -> Any:
    app = create_app("mongomock://hostile-urls", "hostile")
    test_client = app.server.test_client()
    assert test_client.get("/").status_code == 200  # sets the app up
    return test_client


def _route(client: Any, pathname: str, search: str) -> str:
    payload = {
        "output": "page.children",
        "outputs": {"id": "page", "property": "children"},
        "inputs": [
            {"id": "url", "property": "pathname", "value": pathname},
            {"id": "url", "property": "search", "value": search},
        ],
        "changedPropIds": ["url.pathname"],
        "state": [],
    }
    response = client.post("/_dash-update-component", json=payload)
    assert response.status_code in (200, 204), (pathname, response.status_code)
    return response.get_data(as_text=True)


@pytest.mark.parametrize("pathname", HOSTILE)
@pytest.mark.parametrize("search", SEARCHES)
def test_hostile_urls_give_a_page_or_a_message(client: Any, pathname: str, search: str) -> None:
    body = _route(client, pathname, search)
    assert "Traceback" not in body and "Something went wrong" not in body, body[:500]
    if pathname.startswith("/candidate/"):
        assert "No candidate" in body, body[:300]


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value] + [k for v in value.values() for k in _keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


OPERATORS = {"$and", "$or", "$gte", "$lte", "$gt", "$lt", "$eq", "$ne", "$in", "$all", "$exists", "$regex", "$nin"}
TEXT = st.text(max_size=60) | st.sampled_from(["$where", '{"$gt": 1}', "Li", "pred_band_gap >= 3", "Fe,O", "a.b"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    campaign=TEXT,
    where=TEXT,
    formula=TEXT,
    generator=TEXT,
    status=TEXT,
    sort=TEXT,
    elements=st.lists(TEXT, max_size=3),
)
def test_filter_values_never_become_operators(
    campaign: str, where: str, formula: str, generator: str, status: str, sort: str, elements: list[str]
) -> None:
    query = CandidateQuery(
        campaign=campaign,
        where=where,
        formula=formula,
        generator=generator,
        status=status,
        sort=sort,
        elements=tuple(elements),
    )
    try:
        flt = candidate_filter(query)
    except ValueError as exc:
        assert "\n" not in str(exc)  # one clear line
        return
    keys = _keys(flt)
    assert {k for k in keys if k.startswith("$")} <= OPERATORS, flt
    for key in ("campaign", "generator", "status"):
        if key in flt:
            assert isinstance(flt[key], str), flt  # user text stays a value
    json.dumps(flt, default=str)
