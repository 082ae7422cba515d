"""Test doubles for the store: a repository that dies for real in the middle of a stage.

``CrashAfter(store, 1)`` is ``store`` (same database) whose ``put_evaluation`` lets one call through and raises on
the second and every later one, the error a lost store raises once its retries are spent
(:class:`~core.errors.StoreUnavailableError`). The stage that writes through it stops mid-batch, as a run does
when its store goes away; run the stage again on ``store`` to resume::

    dying = CrashAfter(store, 1)
    with pytest.raises(StoreCrash):
        StageRunner(dying, config).evaluate(1, batch)
    StageRunner(store, config).evaluate(1, batch)  # the re-run: only the missing results
"""

from __future__ import annotations

from typing import Any

from core.errors import StoreUnavailableError
from store.repository import CandidateStore


class StoreCrash(StoreUnavailableError):
    """The failure :class:`CrashAfter` injects: a :class:`~core.errors.StoreUnavailableError`, as the repository
    raises when its connection stays lost, told apart from a real one by its type."""


class CrashAfter(CandidateStore):
    """``store``'s database through a repository whose ``method`` succeeds ``n`` times, then raises
    :class:`StoreCrash` on every call (the store is gone: the failing call writes nothing).

    ``calls`` counts the calls of ``method`` (the failing ones too); every other method is the real one.
    """

    def __init__(self, store: CandidateStore, n: int, *, method: str = "put_evaluation") -> None:
        super().__init__(store.db, reopen=store._reopen)
        real = getattr(super(), method)  # a missing method is an AttributeError here, not at the crash
        self.method, self.n, self.calls = method, n, 0

        def crashing(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls > self.n:
                raise StoreCrash(f"store connection lost in {method}: injected after {self.n} calls (CrashAfter)")
            return real(*args, **kwargs)

        setattr(self, method, crashing)
