"""Test doubles shipped with the package: a conditionable generator that records what it was asked for."""

from __future__ import annotations

from typing import ClassVar

from core.expressions import TargetExpression
from generation.base import Candidate, GenerationRequest
from generation.config import GenerateConfig
from generation.registry import GENERATORS

#: Registry name of :class:`ConditionRecorder` while registered.
RECORDER = "condition-recorder"


class ConditionRecorder:
    """A generator conditionable on ``band_gap`` (like ``learned``) that keeps every request it gets and returns
    each parent with its Li exchanged for Na (Na for Li), carrying the request's condition."""

    condition_names: ClassVar[tuple[str, ...]] = ("band_gap",)
    requests: ClassVar[list[GenerationRequest]] = []

    @staticmethod
    def check_condition(condition: TargetExpression) -> None:
        """Accepts any condition on ``band_gap`` (the loop checks it before a round)."""

    def generate(self, request: GenerationRequest, config: GenerateConfig) -> list[Candidate]:
        """One Li<->Na exchanged copy per parent (``config`` is not read)."""
        ConditionRecorder.requests.append(request)
        text = request.condition.text if request.condition is not None else ""
        out = []
        for name, parent in request.parents:
            swapped = parent.copy()
            swapped.replace_species({"Li": "Na", "Na": "Li"} if "Li" in parent.symbol_set else {"Na": "Li"})
            out.append(Candidate(structure=swapped, parent=name, kind="test", generator=RECORDER, condition=text))
        return out


def register_condition_recorder() -> type[ConditionRecorder]:
    """Register :class:`ConditionRecorder` as ``condition-recorder`` with no requests recorded yet."""
    ConditionRecorder.requests.clear()
    GENERATORS.add(RECORDER, ConditionRecorder)
    return ConditionRecorder


def unregister_condition_recorder() -> None:
    """Undo :func:`register_condition_recorder`."""
    GENERATORS.remove(RECORDER)
