"""An MP_API_KEY without the mp-api client fails at once with what to do, not at the end of a round."""

from __future__ import annotations

import importlib.util

import pytest

from core.errors import ConfigError
from oracle.competing import CompetingPhases


def test_key_without_client_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mp_api" else real(name, *a))
    monkeypatch.setenv("MP_API_KEY", "x" * 32)
    with pytest.raises(ConfigError, match="mp-api client is not installed"):
        CompetingPhases.from_env()
    monkeypatch.delenv("MP_API_KEY")
    assert CompetingPhases.from_env() is None
