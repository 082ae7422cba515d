"""Sampling the Wyckoff transformer: conditions, validity masks, structures built by PyXtal."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from pymatgen.core import Composition, Element

from generation.base import Candidate, GenerationRequest
from generation.conditions import gap_classes_for
from generation.config import GenerateConfig
from generation.filters import charge_balanced, has_reasonable_distances
from generation.wyckoff import LETTERS, WyckoffSequence, build, centring, wyckoff_table
from generation.wyckoff_model import ALKALI, MAX_ORBITS, MAX_Z, VOCAB, TrainedGenerator, _batch


def _alkali_choices(require_any: Sequence[str]) -> list[int]:
    want = set(require_any)
    if not want or not want <= {"Li", "Na"}:
        return [0]
    return [2, 3] if want == {"Li", "Na"} else [2] if want == {"Li"} else [3]


class _Masker:
    """Which next tokens keep a partial sequence valid."""

    def __init__(self, config: GenerateConfig) -> None:
        allowed = set(config.allow_elements) if config.allow_elements else None
        self.elements = torch.zeros(VOCAB.size, dtype=torch.bool)
        for z in range(1, MAX_Z + 1):
            sym = Element.from_Z(z).symbol
            if sym in config.exclude_elements or (allowed is not None and sym not in allowed):
                continue
            self.elements[VOCAB.el0 + z - 1] = True
        self.sgs = torch.zeros(VOCAB.size, dtype=torch.bool)
        self.sgs[VOCAB.sg0 : VOCAB.sg0 + 230] = True
        self.max_sites = config.max_sites
        self.charge_balance = config.charge_balance
        self.require = tuple(config.require_any)

    def _may_end(self, sg: int, pairs: list[int]) -> bool:
        """A sequence may end when it holds a required element and its composition is charge balanced (when the
        config asks for those)."""
        if self.require and not any(VOCAB.element(el) in pairs[0::2] for el in self.require):
            return False
        if not self.charge_balance:
            return True
        table = wyckoff_table(sg)
        counts: dict[str, int] = {}
        for e, w in zip(pairs[0::2], pairs[1::2], strict=True):
            sym = Element.from_Z(e - VOCAB.el0 + 1).symbol
            counts[sym] = counts.get(sym, 0) + table[LETTERS[w - VOCAB.let0]][0]
        return charge_balanced(Composition(counts).reduced_formula)

    def mask(self, prefix: list[int]) -> torch.Tensor:
        n = len(prefix)
        if n == 3:
            return self.sgs
        sg = prefix[3] - VOCAB.sg0 + 1
        table = wyckoff_table(sg)
        pairs = prefix[4:]
        if len(pairs) % 2 == 0:  # an element or the end
            m = self.elements.clone()
            m[VOCAB.EOS] = len(pairs) > 0 and self._may_end(sg, pairs)
            if len(pairs) // 2 >= MAX_ORBITS:
                m[:] = False
                m[VOCAB.EOS] = self._may_end(sg, pairs)
            return m
        used = [LETTERS[t - VOCAB.let0] for t in pairs[1::2]]
        size = sum(table[w][0] for w in used) / centring(sg)
        m = torch.zeros(VOCAB.size, dtype=torch.bool)
        for letter, (mult, dof) in table.items():
            if (dof == 0 and letter in used) or size + mult / centring(sg) > self.max_sites:
                continue
            m[VOCAB.letter(letter)] = True
        return m


def sample_sequences(
    gen: TrainedGenerator,
    n: int,
    config: GenerateConfig,
    *,
    gap_classes: Sequence[int] = (0,),
    alkali_classes: Sequence[int] = (0,),
    seed: int = 0,
    temperature: float = 1.0,
    batch_size: int = 256,
) -> list[tuple[WyckoffSequence | None, int, int]]:
    """``n`` sampled (sequence or None for a dead end, gap class, alkali class), reproducible for ``seed``."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gap_w = np.array([gen.meta["gap_counts"][g] + 1.0 for g in gap_classes])
    alk_w = np.array([gen.meta["alkali_counts"][a] + 1.0 for a in alkali_classes])
    masker = _Masker(config)
    out: list[tuple[WyckoffSequence | None, int, int]] = []
    model = gen.model
    with torch.no_grad():
        while len(out) < n:
            b = min(batch_size, n - len(out))
            conds = [
                (
                    int(rng.choice(gap_classes, p=gap_w / gap_w.sum())),
                    int(rng.choice(alkali_classes, p=alk_w / alk_w.sum())),
                )
                for _ in range(b)
            ]
            seqs = [[VOCAB.BOS, VOCAB.gap0 + g, VOCAB.alk0 + a] for g, a in conds]
            done = [False] * b
            dead = [False] * b
            for _ in range(model.max_len - 3):
                if all(done):
                    break
                logits = model(_batch(seqs, max(len(s) for s in seqs)))
                last = torch.stack([logits[i, len(s) - 1] for i, s in enumerate(seqs)])
                for i, s in enumerate(seqs):
                    if done[i]:
                        continue
                    m = masker.mask(s)
                    if not bool(m.any()):
                        done[i] = dead[i] = True
                        continue
                    row = last[i] / temperature
                    row = row.masked_fill(~m, -math.inf)
                    token = int(torch.multinomial(torch.softmax(row, dim=-1), 1))
                    s.append(token)
                    if token == VOCAB.EOS:
                        done[i] = True
            for s, (g, a), d in zip(seqs, conds, dead, strict=True):
                out.append((None if d else _decode(s), g, a))
    return out


def _decode(s: list[int]) -> WyckoffSequence | None:
    if not s or s[-1] != VOCAB.EOS:
        return None
    sg = s[3] - VOCAB.sg0 + 1
    body = s[4:-1]
    sites = [
        (Element.from_Z(body[i] - VOCAB.el0 + 1).symbol, LETTERS[body[i + 1] - VOCAB.let0])
        for i in range(0, len(body), 2)
    ]
    return WyckoffSequence.canonical(sg, sites)


#: Most sequences drawn per structure asked for: sequences end only when charge balanced, so some dead-end.
MAX_DRAWS_PER_SAMPLE = 8


def sample_candidates(
    gen: TrainedGenerator, request: GenerationRequest, config: GenerateConfig, *, version: str
) -> list[Candidate]:
    """Up to ``request.n`` structures: sequences are drawn in rounds (at most ``MAX_DRAWS_PER_SAMPLE`` x n in all)
    and built by PyXtal; a dead-end sequence or one PyXtal cannot build (or builds with atoms too close) gives
    none. Reproducible for ``request.seed``."""
    gaps = gap_classes_for(request.condition)
    alks = _alkali_choices(config.require_any)
    condition = request.condition.text if request.condition is not None else ""
    out: list[Candidate] = []
    drawn = 0
    batch = 0
    while len(out) < request.n and drawn < MAX_DRAWS_PER_SAMPLE * request.n:
        want = min(max(2 * (request.n - len(out)), 16), MAX_DRAWS_PER_SAMPLE * request.n - drawn)
        sampled = sample_sequences(
            gen, want, config, gap_classes=gaps, alkali_classes=alks, seed=request.seed * 1009 + batch,
            temperature=config.temperature,
        )  # fmt: skip
        batch += 1
        for seq, g, a in sampled:
            k = drawn
            drawn += 1
            if seq is None or len(out) >= request.n:
                continue
            structure = build(
                seq,
                seed=request.seed * 100003 + k,
                accept=lambda s: has_reasonable_distances(s, config.min_distance_ratio),
            )
            if structure is None:
                continue
            out.append(
                Candidate(
                    structure=structure,
                    parent="",
                    kind="learned",
                    generator="learned",
                    version=version,
                    parameters={
                        "wyckoff": seq.as_text(),
                        "gap_class": g,
                        "alkali_class": ALKALI[a],
                        "temperature": config.temperature,
                        "seed": request.seed,
                        "index": k,
                    },
                    condition=condition,
                )
            )
    return out
