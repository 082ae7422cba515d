"""Pickled files are refused unless this installation signed them (core.signing): nothing in a crafted file runs."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from core.signing import UntrustedFileError, read_signed, write_signed

RAN: list[str] = []


class Payload:
    """Unpickling this calls RAN.append: the test fails if it ever runs."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (RAN.append, ("executed",))


def test_signed_round_trip(tmp_path: Path) -> None:
    path = write_signed(tmp_path / "m.pkl", pickle.dumps({"a": 1}))
    assert pickle.loads(read_signed(path)) == {"a": 1}


def test_crafted_files_are_refused_before_unpickling(tmp_path: Path) -> None:
    from surrogates.baseline import CompositionBaseline
    from surrogates.descriptor_models import DescriptorEnsemble

    crafted = tmp_path / "baseline.pkl"
    crafted.write_bytes(pickle.dumps(Payload()))
    for load in (CompositionBaseline.load, DescriptorEnsemble.load):
        with pytest.raises(UntrustedFileError, match="no signature"):
            load(crafted)
    (tmp_path / "baseline.pkl.sig").write_text("0" * 64)  # a forged signature
    with pytest.raises(UntrustedFileError, match="does not match"):
        CompositionBaseline.load(crafted)
    signed = write_signed(tmp_path / "ok.pkl", pickle.dumps([1]))
    signed.write_bytes(pickle.dumps(Payload()))  # swapped after signing
    with pytest.raises(UntrustedFileError):
        read_signed(signed)
    assert RAN == []


def test_processed_cache_rebuilds_unsigned_files(tmp_path: Path) -> None:
    from ingest.cache import read_cached

    crafted = tmp_path / "mp20-abc.pkl"
    crafted.write_bytes(pickle.dumps(Payload()))
    assert read_cached(crafted) is None and RAN == []


def test_an_unsigned_default_model_is_retrained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A registered default model whose pickle lost its signature is set aside and trained again (not loaded)."""
    from store import open_store
    from store.connection import close_all
    from surrogates import predictors

    store = open_store("mongomock://signing-default", "t")
    folder = tmp_path / "defaults" / "mp-band-gap-x"
    folder.mkdir(parents=True)
    (folder / predictors.MODEL_FILE).write_text("{}")
    (folder / "baseline.pkl").write_bytes(pickle.dumps(Payload()))  # unsigned
    assert "no signature" in predictors.folder_problem(folder)
    calls: list[str] = []

    class Latest:
        id, path = "mp-band-gap-v1", str(folder)

    monkeypatch.setattr(store, "latest_model", lambda campaign: Latest() if not calls else None)
    monkeypatch.setattr(predictors, "default_model_dir", lambda name: tmp_path / "defaults" / "fresh")

    def train(*args: object, **kwargs: object) -> object:
        calls.append(str(kwargs["directory"]))
        return type("T", (), {"model_id": "mp-band-gap-v2"})()

    monkeypatch.setattr("surrogates.property_models.train_and_register", train)
    assert predictors.ensure_model(store, "band_gap", database="t") == "mp-band-gap-v2"
    assert calls == [str(tmp_path / "defaults" / "fresh")] and not folder.exists() and RAN == []
    close_all()
