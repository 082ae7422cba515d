"""Competing phases from the Materials Project for the convex hull (``mp-api``, with an API key).

Entries are fetched once per chemical system (``MPRester.get_entries_in_chemsys``, GGA/GGA+U with
MP2020 corrections, as MP serves them) and cached on disk as JSON, so later rounds and offline runs
reuse them. Without a key (``MP_API_KEY``) nothing is fetched and the hull holds the elemental
references and the campaign's own structures only.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from core import paths
from core.errors import ConfigError

#: Environment variable holding the Materials Project API key.
ENV_MP_API_KEY = "MP_API_KEY"


@dataclass(frozen=True, kw_only=True)
class Phase:
    """One MP entry: ``energy_per_atom`` is MP's corrected GGA/GGA+U energy (eV/atom)."""

    entry_id: str
    formula: str
    energy_per_atom: float


#: fetch(elements) -> phases of exactly that chemical system and its subsystems
Fetcher = Callable[[list[str]], list[Phase]]


def mp_api_fetcher(api_key: str) -> Fetcher:
    """A fetcher that asks the Materials Project through ``mp-api`` (installed with the ``data`` extra)."""

    def fetch(elements: list[str]) -> list[Phase]:
        try:
            from mp_api.client import MPRester
        except ImportError as exc:
            raise ConfigError(
                "MP competing phases need mp-api: pip install 'ai-battery-materials[data]' (or unset MP_API_KEY)"
            ) from exc
        with MPRester(api_key, mute_progress_bars=True) as rester:
            entries = rester.get_entries_in_chemsys(elements, additional_criteria={"thermo_types": ["GGA_GGA+U"]})
        return [
            Phase(
                entry_id=str(e.entry_id),
                formula=e.composition.reduced_formula,
                energy_per_atom=float(e.energy_per_atom),
            )
            for e in entries
        ]

    return fetch


class CompetingPhases:
    """MP phases per chemical system, cached under ``<cache>/mp_phases/<chemsys>.json``."""

    def __init__(self, fetch: Fetcher | None = None, cache_dir: Path | None = None) -> None:
        self.fetch = fetch
        self.cache_dir = Path(cache_dir) if cache_dir is not None else paths.subdir("cache") / "mp_phases"
        self.n_fetched = 0  #: chemical systems fetched (cache misses) by this instance

    @classmethod
    def from_env(cls, cache_dir: Path | None = None) -> CompetingPhases | None:
        """From ``$MP_API_KEY``; None when no key is set (and the cache alone is not used).

        Raises ConfigError at once when a key is set but the ``mp-api`` client is not installed (rather than when the
        first hull is asked for, after a round's oracle work)."""
        key = os.environ.get(ENV_MP_API_KEY, "").strip()
        if not key:
            return None
        import importlib.util

        if importlib.util.find_spec("mp_api") is None:
            raise ConfigError(
                f"{ENV_MP_API_KEY} is set but the mp-api client is not installed: pip install mp-api "
                f"(or: pip install -e '.[data]'), or unset {ENV_MP_API_KEY} to use the offline phases only"
            )
        return cls(mp_api_fetcher(key), cache_dir)

    def _file(self, elements: Iterable[str]) -> Path:
        chemsys = "-".join(sorted(elements))
        if not re.fullmatch(r"[A-Za-z-]+", chemsys):
            raise ConfigError(f"not a chemical system: {chemsys!r}")
        return self.cache_dir / f"{chemsys}.json"

    def phases(self, elements: Iterable[str]) -> list[Phase]:
        """Every MP phase whose elements are a subset of ``elements`` (fetched once, then cached)."""
        symbols = sorted(set(elements))
        path = self._file(symbols)
        if path.is_file():
            try:
                return [Phase(**p) for p in json.loads(path.read_text())["phases"]]
            except (OSError, ValueError, KeyError, TypeError):
                pass  # a corrupt cache is fetched again
        if self.fetch is None:
            return []
        phases = self.fetch(symbols)
        self.n_fetched += 1
        allowed = set(symbols)
        phases = [p for p in phases if set(re.findall(r"[A-Z][a-z]?", p.formula)) <= allowed]
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".phases-", suffix=".json")
        with os.fdopen(fd, "w") as handle:
            json.dump({"chemsys": "-".join(symbols), "units": "eV/atom", "phases": [asdict(p) for p in phases]}, handle)
        os.replace(tmp, path)
        return phases

    def for_systems(self, systems: Iterable[Iterable[str]]) -> list[Phase]:
        """Phases of several chemical systems, each entry once (one fetch per largest system)."""
        wanted = {frozenset(s) for s in systems}
        largest = [s for s in wanted if not any(s < other for other in wanted)]
        seen: dict[str, Phase] = {}
        for system in sorted(largest, key=sorted):
            for phase in self.phases(system):
                seen.setdefault(phase.entry_id, phase)
        return list(seen.values())
