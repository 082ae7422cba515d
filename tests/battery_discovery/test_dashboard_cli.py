"""``battery-discovery dashboard``: binds 127.0.0.1 unless told otherwise, builds the app on the given store."""

from __future__ import annotations

from typing import Any

import pytest


def test_binds_localhost_by_default(
    cli: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dash

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(dash.Dash, "run", lambda self, **kw: calls.append(kw))
    assert cli("dashboard", "--store-uri", "mongomock://cli-dash", "--port", "8123") == 0
    assert calls == [{"host": "127.0.0.1", "port": 8123, "debug": False}]
    assert cli("dashboard", "--store-uri", "mongomock://cli-dash", "--host", "0.0.0.0") == 0
    assert calls[-1]["host"] == "0.0.0.0"
    assert "anyone who can reach this machine" in capsys.readouterr().err


def test_help_teaches(cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("dashboard", "--help") == 0
    out = capsys.readouterr().out
    assert "127.0.0.1" in out and "--store-uri" in out and "Candidates" in out
