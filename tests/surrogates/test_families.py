"""The loop's surrogate families are a registry: looked up from the config, a taken name refused."""

from __future__ import annotations

import pytest

from core.registry import DuplicateRegistrationError
from surrogates.config import EnsembleConfig
from surrogates.families import SURROGATE_FAMILIES
from surrogates.registry import surrogate_family


def test_the_config_picks_the_family() -> None:
    from surrogates.descriptor_surrogate import DescriptorSurrogate
    from surrogates.ensemble import GNNEnsemble

    assert surrogate_family(EnsembleConfig()) is GNNEnsemble
    assert surrogate_family(EnsembleConfig(descriptor="chgnet-gb")) is DescriptorSurrogate
    assert set(SURROGATE_FAMILIES.names()) >= {"gnn", "descriptor"}


def test_a_second_family_under_a_taken_name_is_refused() -> None:
    surrogate_family(EnsembleConfig())  # the built-in families are registered
    with pytest.raises(DuplicateRegistrationError, match="surrogate family 'gnn' is already registered"):

        @SURROGATE_FAMILIES.register("gnn")
        class Another:
            pass
