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
