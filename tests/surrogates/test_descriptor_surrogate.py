"""Descriptor ensembles as loop surrogates: fit per target, posterior draws, save/load and the loop registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Structure

from core.errors import ModelNotFoundError
from surrogates.config import EnsembleConfig
from surrogates.descriptor_surrogate import DescriptorSurrogate, is_descriptor_folder, surrogate_features

PEROV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "perov_5" / "val.csv"


@pytest.fixture(scope="module")
def perov() -> pd.DataFrame:
    if not PEROV.is_file():
        pytest.fail(f"{PEROV} is missing: CI clones the project with ../shared beside it")
    rows = pd.read_csv(PEROV, nrows=600)
    rows["structure"] = [Structure.from_str(c, fmt="cif") for c in rows["cif"]]
    return rows


@pytest.mark.slow
def test_descriptor_surrogates_fit_sample_save_and_register(perov: pd.DataFrame, tmp_path: Path) -> None:
    from store import open_store
    from store.documents import ModelDoc
    from surrogates.registry import load_ensembles, loop_model_complete, register_loop_model

    structures = list(perov["structure"])
    train, test = structures[:400], structures[400:]
    config = EnsembleConfig(descriptor="auto", n_members=3, seed=0, num_threads=1)
    heat = DescriptorSurrogate.fit(train, perov["heat_all"][:400], config=config, property_name="heat_all", version="v")
    gap = DescriptorSurrogate.fit(train, perov["ind_gap"][:400], config=config, property_name="ind_gap", version="v")
    assert heat.metrics["architecture"] == "chgnet-gb" and gap.metrics["architecture"] == "hurdle-gb"

    draws = heat.predict_members(test)
    assert draws.shape == (heat.n_samples, 200) and np.isfinite(draws).all()
    y = perov["heat_all"][400:].to_numpy()
    assert np.abs(draws.mean(0) - y).mean() < 0.4 * np.abs(y - perov["heat_all"][:400].mean()).mean()
    assert np.array_equal(draws, heat.predict_members(test))  # the same model gives the same draws
    gap_draws = gap.predict_members(test)
    assert (gap_draws >= 0).all() and (gap_draws == 0).mean() > 0.5  # a mixture with exact zeros

    # too few positives for a hurdle, too few records to cross-fit: simpler models, recorded
    one_positive = np.r_[np.zeros(29), 2.0]
    fallback = DescriptorSurrogate.fit(train[:30], one_positive, config=config, property_name="g", version="v")
    assert fallback.metrics["architecture"] == "chgnet-gb"
    tiny = DescriptorSurrogate.fit(train[:4], [0.1, 0.2, 0.3, 0.5], config=config, property_name="h", version="v")
    assert tiny.metrics["architecture"] == "gb-ensemble" and tiny.predict_members(test[:3]).shape == (32, 3)

    # features are cached by structure: the same rows come back
    assert np.array_equal(surrogate_features(test[:5]), surrogate_features(list(test[:5])), equal_nan=True)

    store = open_store("mongomock://descriptor-surrogate", "t")
    doc = register_loop_model(
        store,
        campaign="c",
        round_index=1,
        database="t",
        ensembles={"heat_all": heat, "ind_gap": gap},
        config=config,
        n_train=400,
    )
    assert isinstance(doc, ModelDoc) and doc.architecture == "auto"
    assert loop_model_complete(doc, ["heat_all", "ind_gap"])
    loaded = load_ensembles(doc, ["heat_all", "ind_gap"])
    assert all(isinstance(m, DescriptorSurrogate) for m in loaded)
    assert np.array_equal(loaded[0].predict_members(test), draws)

    folder = Path(doc.path) / "ind_gap"
    assert is_descriptor_folder(folder)
    (folder / "descriptor.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ModelNotFoundError, match="corrupt"):
        DescriptorSurrogate.load(folder)
