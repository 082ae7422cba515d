"""Deterministic candidate documents for benchmarks/store_scale.py: the same seed gives the same documents."""

from __future__ import annotations

import hashlib
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

DOC_VERSION = 1  # bump when the documents change: a reused database of another version is rebuilt
CAMPAIGNS = ("li-cathode", "na-cathode", "solid-electrolyte", "wide-gap")
GENERATORS = ("substitution", "ion-exchange", "pyxtal", "learned")
ALKALI = (("Li", 0.40), ("Na", 0.25), ("K", 0.05), ("Mg", 0.05), ("", 0.25))
CATIONS = ("Fe", "Mn", "Co", "Ni", "Ti", "V", "Cr", "Cu", "Zn", "Nb", "Mo", "Zr", "Al", "Si", "Sn", "Ge", "La", "Y")
ANIONS = (("O", 0.55), ("S", 0.10), ("F", 0.10), ("Cl", 0.06), ("P", 0.08), ("N", 0.04), ("Se", 0.04), ("Br", 0.03))
STATUSES = (("generated", 0.72), ("acquired", 0.03), ("evaluated", 0.20), ("failed", 0.05))
T0 = datetime(2026, 1, 1, tzinfo=UTC)
COUNT_CAP = 1000  # dashboard.widgets.COUNT_CAP: the table counts up to 1,001 rows


def _weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    x, acc = rng.random(), 0.0
    for value, weight in table:
        acc += weight
        if x < acc:
            return value
    return table[-1][0]


def _formula(counts: dict[str, int]) -> str:
    """A reduced formula, alkali first and anions last (as pymatgen writes most of these)."""
    g = 0
    for c in counts.values():
        g = math.gcd(g, c)
    return "".join(f"{el}{'' if c // g == 1 else c // g}" for el, c in counts.items())


def _structure(rng: random.Random, species: list[str]) -> dict[str, Any]:
    """A pymatgen ``Structure.as_dict()``-shaped dict (Å) with one site per entry of ``species``."""
    a, b, c = (round(rng.uniform(3.5, 12.0), 6) for _ in range(3))
    sites = []
    for el in species:
        frac = [round(rng.random(), 6) for _ in range(3)]
        sites.append(
            {
                "species": [{"element": el, "occu": 1}],
                "abc": frac,
                "properties": {},
                "label": el,
                "xyz": [round(frac[0] * a, 6), round(frac[1] * b, 6), round(frac[2] * c, 6)],
            }
        )
    return {
        "@module": "pymatgen.core.structure",
        "@class": "Structure",
        "charge": 0,
        "lattice": {
            "matrix": [[a, 0.0, 0.0], [0.0, b, 0.0], [0.0, 0.0, c]],
            "pbc": [True, True, True],
            "a": a,
            "b": b,
            "c": c,
            "alpha": 90.0,
            "beta": 90.0,
            "gamma": 90.0,
            "volume": round(a * b * c, 6),
        },
        "properties": {},
        "sites": sites,
    }


class DocumentSource:
    """Deterministic candidate documents: document ``i`` depends on the seed and the documents before it."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.polymorphs: dict[tuple[str, str], int] = {}
        self.i = 0

    def next(self) -> dict[str, Any]:
        """The next document, as ``CandidateDoc(...).to_mongo()`` gives it."""
        from store.documents import CandidateDoc, oracle_summary

        rng, i = self.rng, self.i
        self.i += 1
        campaign = CAMPAIGNS[i % len(CAMPAIGNS)] if rng.random() < 0.7 else rng.choice(CAMPAIGNS)
        counts: dict[str, int] = {}
        alkali = _weighted(rng, ALKALI)
        if alkali:
            counts[alkali] = rng.randint(1, 3)
        for el in rng.sample(CATIONS, rng.choice((1, 1, 2))):
            counts[el] = rng.randint(1, 2)
        anion = _weighted(rng, ANIONS)
        if anion == "P":  # phosphates
            counts["P"], counts["O"] = 1, 4
        else:
            counts[anion] = rng.randint(1, 4)
            if rng.random() < 0.15:
                other = _weighted(rng, ANIONS)
                if other not in counts and other != "P":
                    counts[other] = rng.randint(1, 2)
        formula = _formula(counts)
        elements = sorted(counts)
        mult = rng.choice((1, 1, 2, 2, 4))
        species = [el for el, c in counts.items() for _ in range(c * mult)][:48]
        fp = hashlib.sha1(formula.encode()).hexdigest()[:12]
        k = self.polymorphs[(campaign, fp)] = self.polymorphs.get((campaign, fp), 0) + 1
        cid = f"{campaign}-{fp}" if k == 1 else f"{campaign}-{fp}-{k}"
        source_roll = rng.random()
        source = "seed" if source_roll < 0.01 else "dataset" if source_roll < 0.05 else rng.choice(GENERATORS)
        generated = source not in ("seed", "dataset")
        rnd = 0 if source == "seed" else rng.randint(1, 30)
        status = _weighted(rng, STATUSES)
        gap, e_hull = max(0.0, rng.gauss(2.0, 1.5)), rng.gauss(0.12, 0.15)
        e_form = rng.gauss(-1.6, 0.6)
        predictions: dict[str, dict[str, float]] = {}
        if rng.random() < 0.95:
            predictions = {
                "e_above_hull": {"mean": e_hull, "std": rng.uniform(0.01, 0.1)},
                "formation_energy_per_atom": {"mean": e_form, "std": rng.uniform(0.01, 0.1)},
                "band_gap": {"mean": gap, "std": rng.uniform(0.1, 0.8)},
                "log10_conductivity": {"mean": rng.gauss(-6.0, 2.0), "std": rng.uniform(0.5, 2.0)},
            }
        oracle: dict[str, Any] = {}
        oracle_key = "chgnet-0.3.0:fmax0.05:steps500"
        if status == "evaluated":
            evaluation: dict[str, Any] = {
                "status": "converged" if rng.random() < 0.93 else "unconverged",
                "oracle_key": oracle_key,
                "formation_energy_per_atom": e_form + rng.gauss(0, 0.08),
                "energy_above_hull": e_hull + rng.gauss(0, 0.05),
                "hull": {"n_phases": rng.randint(0, 40), "thin": rng.random() < 0.3},
                "properties": {
                    "band_gap": {"mean": gap + rng.gauss(0, 0.2), "std": rng.uniform(0.1, 0.5)},
                    "log10_conductivity": {"mean": rng.gauss(-6.0, 2.0), "std": rng.uniform(0.5, 2.0)},
                },
            }
            if alkali in ("Li", "Na") and rng.random() < 0.5:
                evaluation["electrode"] = {
                    "average_voltage": rng.uniform(1.0, 4.8),
                    "capacity_mAh_g": rng.uniform(50, 300),
                }
                evaluation["window"] = {"low_V": rng.uniform(0, 2), "high_V": rng.uniform(2, 5)}
            oracle = oracle_summary(evaluation)
        elif status == "failed":
            oracle = oracle_summary({"status": "failed", "oracle_key": oracle_key})
        doc = CandidateDoc.model_validate(
            {
                "_id": cid,
                "campaign": campaign,
                "fingerprint": fp,
                "formula": formula,
                "elements": elements,
                "chemsys": "-".join(elements),
                "n_sites": len(species),
                "structure": _structure(rng, species),
                "source": source,
                "labels": {"heat_all": rng.gauss(-1.5, 0.7)} if source == "dataset" else {},
                "parent": None if source == "seed" else f"{campaign}-seed-{rng.randrange(200)}",
                "substitutions": {"Li": "Na"} if source == "ion-exchange" else {},
                "probability": round(rng.random(), 4),
                "generator": source if generated else None,
                "generator_version": "bench-1" if generated else "",
                "parameters": {"seed": rng.randrange(10**6)} if source == "pyxtal" else {},
                "status": status,
                "predictions": predictions,
                "oracle": oracle,
                "predicted_by": f"{campaign}-r{max(0, rnd - 1)}" if predictions else None,
                "predicted_round": rnd if predictions else None,
                "provenance": {
                    "campaign": campaign,
                    "round": rnd,
                    "code_version": "bench",
                    "created_at": T0 + timedelta(seconds=i),
                    "oracle": "chgnet" if oracle else None,
                },
            }
        )
        return doc.to_mongo()


# ------------------------------------------------------------------------------------------------ queries
