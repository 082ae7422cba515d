"""The project's learned, property-conditioned generator: a small transformer over Wyckoff sequences.

A sequence is ``BOS, gap, alkali, space group, (element, letter) x orbits, EOS``. ``gap`` is a band-gap class
(unknown, 0, (0, 1), [1, 3), >= 3 eV; MP-20 gives PBE gaps, MPTS-52 none) and ``alkali`` says whether the
structure holds Li, Na, both or neither; both are inputs, dropped to "any" for 15 % of the training sequences,
so sampling can be conditioned on them or not. The model is a causal transformer encoder (PyTorch, about 0.5 M
parameters) trained by next-token cross-entropy on the space group and orbit tokens of the MP-20 and MPTS-52
files (about 12,000 structures, a few minutes on 2 cores). Sampling masks tokens that cannot be valid (letters
the space group lacks, a fixed position used twice, cells over ``max_sites``, elements outside the allowed
set), and PyXtal builds each sampled sequence (:func:`generation.wyckoff.build`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pymatgen.core import Element

from core.errors import ConfigError
from generation.conditions import GAP_BINS
from generation.data import TrainingRow, rows_hash
from generation.wyckoff import LETTERS, WyckoffSequence, encode

MAX_ORBITS = 20
MAX_Z = 94
ALKALI = ("any", "none", "Li", "Na", "LiNa")
WEIGHTS_FILE = "generator.pt"
META_FILE = "generator.json"


class Vocab:
    """Token ids: specials, gap classes, alkali classes, space groups, elements, Wyckoff letters."""

    PAD, BOS, EOS = 0, 1, 2

    def __init__(self) -> None:
        self.gap0 = 3
        self.alk0 = self.gap0 + 1 + len(GAP_BINS)
        self.sg0 = self.alk0 + len(ALKALI)
        self.el0 = self.sg0 + 230
        self.let0 = self.el0 + MAX_Z
        self.size = self.let0 + len(LETTERS)

    def sg(self, number: int) -> int:
        return self.sg0 + number - 1

    def element(self, symbol: str) -> int:
        return self.el0 + Element(symbol).Z - 1

    def letter(self, letter: str) -> int:
        return self.let0 + LETTERS.index(letter)


VOCAB = Vocab()


def gap_class(gap: float) -> int:
    """0 for unknown (NaN), else 1 + the index of the band-gap bin (eV) holding ``gap``."""
    if not math.isfinite(gap):
        return 0
    if gap <= 0:
        return 1
    return 2 if gap < 1 else 3 if gap < 3 else 4


def alkali_class(elements: set[str]) -> int:
    """Index in :data:`ALKALI` of a structure's elements (never 0, "any")."""
    li, na = "Li" in elements, "Na" in elements
    return 4 if li and na else 2 if li else 3 if na else 1


def tokens(seq: WyckoffSequence, gap: int, alkali: int) -> list[int]:
    """Token ids of one training or prompt sequence."""
    out = [VOCAB.BOS, VOCAB.gap0 + gap, VOCAB.alk0 + alkali, VOCAB.sg(seq.space_group)]
    for el, letter in seq.sites:
        out += [VOCAB.element(el), VOCAB.letter(letter)]
    return [*out, VOCAB.EOS]


@dataclass(frozen=True, kw_only=True)
class LearnedConfig:
    """Knobs of the Wyckoff transformer and its training (sizes in tokens / units, lr in 1/step)."""

    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    dropout: float = 0.1
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    condition_dropout: float = 0.15
    val_fraction: float = 0.05
    seed: int = 0
    max_steps: int = 0  # 0: all epochs; else stop after this many optimiser steps (tests)


class WyckoffTransformer(torch.nn.Module):
    """Causal transformer over :class:`Vocab` tokens; ``forward(x: [B, T] long) -> logits [B, T, V]``."""

    def __init__(self, cfg: LearnedConfig, max_len: int = 5 + 2 * MAX_ORBITS) -> None:
        super().__init__()
        self.max_len = max_len
        self.embed = torch.nn.Embedding(VOCAB.size, cfg.d_model, padding_idx=VOCAB.PAD)
        self.pos = torch.nn.Embedding(max_len, cfg.d_model)
        layer = torch.nn.TransformerEncoderLayer(
            cfg.d_model, cfg.n_heads, 2 * cfg.d_model, cfg.dropout, batch_first=True, norm_first=True
        )
        self.body = torch.nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.head = torch.nn.Linear(cfg.d_model, VOCAB.size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        h = self.embed(x) + self.pos(torch.arange(t, device=x.device))[None]
        mask = torch.nn.Transformer.generate_square_subsequent_mask(t, device=x.device)
        return self.head(self.body(h, mask=mask, is_causal=True))


def encode_rows(
    rows: Sequence[TrainingRow], progress: Callable[[int, int], None] | None = None
) -> list[tuple[WyckoffSequence, int, int]]:
    """(sequence, gap class, alkali class) of each row that encodes within :data:`MAX_ORBITS` orbits.

    Cached as JSON under ``<data home>/cache/wyckoff/<rows hash>.json`` (a content hash of the rows), since
    symmetry analysis of 12,000 structures takes about a minute and a half.
    """
    from core.paths import subdir

    cache = subdir("cache") / "wyckoff" / f"{rows_hash(rows)}.json"
    if cache.is_file():
        try:
            raw = json.loads(cache.read_text())
            return [
                (WyckoffSequence(space_group=sg, sites=tuple((e, w) for e, w in sites)), g, a)
                for sg, sites, g, a in raw
            ]
        except (ValueError, TypeError, KeyError):  # a damaged cache file: encode again
            pass
    out = _encode_rows(rows, progress)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps([[s.space_group, [list(x) for x in s.sites], g, a] for s, g, a in out]))
    tmp.replace(cache)
    return out


def _encode_rows(
    rows: Sequence[TrainingRow], progress: Callable[[int, int], None] | None
) -> list[tuple[WyckoffSequence, int, int]]:
    out = []
    for i, row in enumerate(rows):
        try:
            seq = encode(row.structure())
        except Exception:  # an unreadable CIF or failed symmetry search: skip the row
            seq = None
        if seq is not None and 0 < len(seq.sites) <= MAX_ORBITS and all(w in LETTERS for _, w in seq.sites):
            out.append((seq, gap_class(row.band_gap), alkali_class({el for el, _ in seq.sites})))
        if progress is not None:
            progress(i + 1, len(rows))
    return out


def _batch(seqs: Sequence[list[int]], max_len: int) -> torch.Tensor:
    x = torch.full((len(seqs), max_len), VOCAB.PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.tensor(s[:max_len])
    return x


def _nll(model: WyckoffTransformer, x: torch.Tensor) -> torch.Tensor:
    logits = model(x[:, :-1])
    target = x[:, 1:].clone()
    target[:, :2] = VOCAB.PAD  # gap and alkali tokens are conditions, not predictions
    return torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB.size), target.reshape(-1), ignore_index=VOCAB.PAD)


@dataclass
class TrainedGenerator:
    """A trained model with what sampling needs: prior frequencies of the condition classes."""

    model: WyckoffTransformer
    config: LearnedConfig
    meta: dict[str, Any]

    def save(self, folder: Path | str) -> Path:
        """Weights (``torch.save`` of the state dict, loaded with ``weights_only=True``) and JSON metadata."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), folder / WEIGHTS_FILE)
        (folder / META_FILE).write_text(json.dumps({**self.meta, "config": asdict(self.config)}, indent=1))
        return folder

    @classmethod
    def load(cls, folder: Path | str) -> TrainedGenerator:
        """Read a saved generator; ConfigError naming the file when it is missing or unreadable."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / META_FILE).read_text())
            cfg = LearnedConfig(**meta.pop("config"))
            model = WyckoffTransformer(cfg)
            model.load_state_dict(torch.load(folder / WEIGHTS_FILE, weights_only=True))
        except Exception as exc:
            raise ConfigError(f"cannot load the generator model in {folder}: {type(exc).__name__}: {exc}") from exc
        model.eval()
        return cls(model=model, config=cfg, meta=meta)


def train_generator(
    rows: Sequence[TrainingRow],
    cfg: LearnedConfig = LearnedConfig(),
    *,
    encode_progress: Callable[[int, int], None] | None = None,
    step_progress: Callable[[int, int, float], None] | None = None,
) -> TrainedGenerator:
    """Train the Wyckoff transformer on ``rows`` (deterministic for ``cfg.seed`` and a thread count)."""
    start = time.perf_counter()
    data = encode_rows(rows, encode_progress)
    if len(data) < 10:
        raise ConfigError(f"only {len(data)} training structures could be encoded; need at least 10")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(data))
    n_val = max(1, int(cfg.val_fraction * len(data)))
    val = [tokens(*data[i]) for i in order[:n_val]]
    train = [data[i] for i in order[n_val:]]
    model = WyckoffTransformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs if not cfg.max_steps else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 1), pct_start=0.1)
    step, loss_value = 0, float("nan")
    model.train()
    while step < total:
        for b in range(0, len(train), cfg.batch_size):
            if step >= total:
                break
            batch = []
            for seq, gap, alk in train[b : b + cfg.batch_size]:
                if rng.random() < cfg.condition_dropout:
                    gap = 0
                if rng.random() < cfg.condition_dropout:
                    alk = 0
                batch.append(tokens(seq, gap, alk))
            x = _batch(batch, max(len(s) for s in batch))
            loss = _nll(model, x)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            loss_value = float(loss.detach())
            if step_progress is not None:
                step_progress(step, total, loss_value)
        rng.shuffle(train)  # type: ignore[arg-type]
    model.eval()
    with torch.no_grad():
        val_nll = float(_nll(model, _batch(val, max(len(s) for s in val))))
    gaps = np.bincount([g for _, g, _ in data], minlength=1 + len(GAP_BINS)).tolist()
    alks = np.bincount([a for _, _, a in data], minlength=len(ALKALI)).tolist()
    meta = {
        "architecture": "wyckoff-transformer",
        "n_train": len(train),
        "n_val": n_val,
        "n_rows": len(rows),
        "data_hash": rows_hash(rows),
        "sources": sorted({r.source for r in rows}),
        "train_loss": loss_value,
        "val_nll": val_nll,
        "steps": step,
        "train_s": time.perf_counter() - start,
        "gap_counts": gaps,
        "alkali_counts": alks,
        "n_parameters": sum(p.numel() for p in model.parameters()),
    }
    return TrainedGenerator(model=model, config=cfg, meta=meta)
