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
from pymatgen.core import Composition, Element

from core.errors import ConfigError
from core.expressions import TargetExpression
from generation.base import Candidate, GenerationRequest
from generation.config import GenerateConfig
from generation.data import TrainingRow, rows_hash, training_rows
from generation.filters import charge_balanced, has_reasonable_distances
from generation.registry import GENERATORS
from generation.wyckoff import LETTERS, WyckoffSequence, build, centring, encode, wyckoff_table

MAX_ORBITS = 20
MAX_Z = 94
#: Band-gap classes (eV): index 0 is "unknown / any".
GAP_BINS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.0, 1.0), (1.0, 3.0), (3.0, math.inf))
ALKALI = ("any", "none", "Li", "Na", "LiNa")
WEIGHTS_FILE = "generator.pt"
META_FILE = "generator.json"
#: Registry campaign prefix of named models (the same as ``surrogates.registry.CAMPAIGN_PREFIX``).
MODEL_CAMPAIGN_PREFIX = "models:"


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


# ---------------------------------------------------------------------------------------------- sampling


def gap_classes_for(condition: TargetExpression | None) -> list[int]:
    """Band-gap classes compatible with ``condition`` ([0], "any", when it says nothing of ``band_gap``).

    Raises:
        ConfigError: the condition names a property the model is not conditioned on.
    """
    if condition is None:
        return [0]
    other = [n for n in condition.names if n != "band_gap"]
    if other:
        raise ConfigError(
            f"the learned generator is conditioned on band_gap (eV) only, not {', '.join(other)}; "
            "use --require/--elements for composition"
        )
    keep = []
    for k, (low, high) in enumerate(GAP_BINS, start=1):
        probe = [low] if low == high else [low + 1e-6, (low + min(high, low + 10)) / 2, min(high, 1e3) - 1e-6]
        if any(condition.holds({"band_gap": v}) for v in probe):
            keep.append(k)
    if not keep:
        raise ConfigError(f"no band gap satisfies {condition.text!r}")
    return keep


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


# ---------------------------------------------------------------------------------------------- registry


def default_training_rows() -> list[TrainingRow]:
    """MP-20 and MPTS-52 validation files (the structures the model is trained on by default)."""
    return training_rows(("mp_20", "mpts_52"))


def register_generator(store: Any, name: str, folder: Path, gen: TrainedGenerator) -> str:
    """Register a saved generator as version k+1 of ``name`` in the store's model registry; returns its id."""
    from store.documents import ModelDoc

    campaign = f"{MODEL_CAMPAIGN_PREFIX}{name}"
    latest = store.latest_model(campaign)
    version = 1 if latest is None else latest.round + 1
    model_id = f"{name}-v{version}"
    store.register_model(
        ModelDoc(
            _id=model_id,
            campaign=campaign,
            round=version,
            name=name,
            version=version,
            property_name="crystal structures (generator)",
            unit="Wyckoff sequences conditioned on band-gap class (eV) and alkali content",
            architecture="wyckoff-transformer",
            n_members=1,
            path=str(Path(folder).resolve()),
            n_train=int(gen.meta["n_train"]),
            metrics={"val_nll": gen.meta["val_nll"], "train_loss": gen.meta["train_loss"]},
            config=asdict(gen.config),
            hyperparameters=asdict(gen.config),
            dataset="+".join(gen.meta["sources"]),
            data_hash=str(gen.meta["data_hash"]),
        )
    )
    return model_id


def find_generator(store: Any, name: str) -> tuple[str, Path] | None:
    """(model id, folder) of the newest registered version of ``name``, or None."""
    doc = store.latest_model(f"{MODEL_CAMPAIGN_PREFIX}{name}")
    return None if doc is None else (doc.id, Path(doc.path))


_LOADED: dict[str, TrainedGenerator] = {}


def load_registered(store: Any, name: str) -> tuple[str, TrainedGenerator]:
    """The newest version of generator ``name`` (cached per process); ModelNotFoundError when none."""
    from core.errors import ModelNotFoundError

    found = find_generator(store, name)
    if found is None:
        raise ModelNotFoundError(f"no generator model {name!r} in the registry; 'battery-discovery generate "
                                 f"--generator learned' trains one")  # fmt: skip
    model_id, folder = found
    if model_id not in _LOADED:
        _LOADED[model_id] = TrainedGenerator.load(folder)
    return model_id, _LOADED[model_id]


@GENERATORS.register("learned")
class LearnedGenerator:
    """Samples of the registered Wyckoff transformer (``learned_model``), conditioned on ``request.condition``
    (band gap, eV) and ``require_any`` (Li / Na), from the model registry of ``request.store``."""

    def generate(self, request: GenerationRequest, config: GenerateConfig) -> list[Candidate]:
        """``request.n`` samples; those PyXtal cannot build are dropped (counted by the caller)."""
        if request.store is None:
            raise ConfigError("the learned generator needs the store holding its model (GenerationRequest.store)")
        model_id, gen = load_registered(request.store, config.learned_model)
        return sample_candidates(gen, request, config, version=model_id)
