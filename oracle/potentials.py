"""Registry of machine-learned interatomic potentials that build ASE calculators.

A potential is named by a *spec* string ``"family"`` or ``"family:argument"``:

| spec | model | energy scale | weights |
| --- | --- | --- | --- |
| ``chgnet`` (= ``chgnet:0.3.0``, the default) | CHGNet 0.3.0 | ``mp2020`` | chgnet wheel (BSD-3-Clause) |
| ``chgnet:0.2.0``, ``chgnet:r2scan`` | older / r2SCAN CHGNet | ``mp2020`` / ``other`` | chgnet wheel |
| ``sevennet`` (= ``sevennet:7net-0``) | SevenNet-0, 11Jul2024 checkpoint | ``mp_raw`` | sevenn wheel (MIT) |
| ``sevennet:7net-l3i5`` | SevenNet-l3i5 | ``mp_raw`` | sevenn wheel (MIT) |
| ``sevennet:7net-mf-0`` | SevenNet-MF-0, its ``PBE`` head (MPtrj GGA/GGA+U) | ``mp_raw`` | sevenn wheel (MIT) |
| ``matgl:<name or local folder>`` | a MatGL PES model | by name (see MatGLPotential) | local folder or HF Hub |

``mp_raw`` means the potential returns raw GGA/GGA+U energies and :mod:`oracle.compat` adds MP2020
corrections (measured: see :class:`oracle.sevennet.SevenNetPotential`, registered when ``oracle`` is imported).
Loaded potentials are cached per process, so a
model is built once (CHGNet ~2 s, SevenNet ~1.5 s).

Every potential records ``version`` and ``checkpoint_sha256`` (sha256 hex of its checkpoint file);
:func:`potential_identity` gives both for a spec *without loading the model* (it hashes the file in the
installed wheel; hashes are cached per process), for the oracle key.

A family is a :class:`Potential` subclass (or any factory of the argument) in :data:`POTENTIALS`, added
with one decorator line; a second registration of a name raises::

    @POTENTIALS.register("mace")
    class MacePotential(Potential): ...

Nothing here downloads: CHGNet and SevenNet weights come from their wheels (files are opened by path, so
sevenn's download fallback is never reached). ``matgl:<name>`` with a bare model name may try the
Hugging Face Hub unless ``HF_HUB_OFFLINE=1``; local folders are checked before matgl is called.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import io
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from core.errors import ConfigError
from core.registry import Registry

DEFAULT_POTENTIAL = "chgnet"

# Files that make up a saved MatGL model folder.
_MATGL_MODEL_FILES = ("model.pt", "state.pt", "model.json")


#: ``version`` / ``checkpoint_sha256`` of a potential whose checkpoint is not known without loading it.
UNKNOWN = "unknown"

#: What :func:`potential_identity` returns: ``{"potential", "version", "checkpoint_sha256"}``.
PotentialIdentity = dict[str, str]


def _pkg_version(name: str) -> str:
    try:
        return package_version(name)
    except PackageNotFoundError:  # pragma: no cover - only for broken installs
        return "unknown"


@functools.cache
def _package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ConfigError(f"package {package!r} is not installed (needed for its pretrained checkpoints)")
    return Path(locations[0])


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path | str) -> str:
    """sha256 hex of a file's bytes, cached per process (keyed by path, size and modification time)."""
    stat = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True, kw_only=True)
class PointEvaluation:
    """Energy, forces and stress of one cell: ``energy`` (eV, total), ``forces`` ``(N, 3)`` eV/Å,
    ``stress`` ``(6,)`` Voigt eV/Å³ (ASE's sign convention)."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray


#: How a potential's energies relate to Materials Project data.
#: ``mp2020``: already on the MP GGA/GGA+U scale with MP2020 corrections (CHGNet's training labels);
#: ``mp_raw``: raw GGA/GGA+U energies, MP2020 corrections must be added; ``other``: not comparable.
EnergyScale = str


#: Environment variable choosing the torch device of the potentials: 'auto' (default), 'cpu', 'cuda', 'cuda:1', ...
ENV_DEVICE = "BATTERY_DISCOVERY_DEVICE"


def torch_device() -> str:
    """The device potentials run on: ``$BATTERY_DISCOVERY_DEVICE``, or 'cuda' when a GPU is visible, else 'cpu'."""
    wanted = os.environ.get(ENV_DEVICE, "auto").strip().lower() or "auto"
    if wanted != "auto":
        return wanted
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Potential(ABC):
    """A loaded potential: its spec ``name``, a ``version`` string, its ``checkpoint_sha256`` and a
    calculator factory.

    ``evaluate`` computes many cells at once; the default calls one calculator per cell, potentials
    that can batch (CHGNet, SevenNet) override it. A family whose checkpoint file can be found without
    loading the model overrides the classmethod :meth:`identity` (used by :func:`potential_identity`).
    """

    name: str
    version: str
    #: sha256 hex of the checkpoint file(s); :data:`UNKNOWN` when the family does not say
    checkpoint_sha256: str = UNKNOWN
    #: see :data:`EnergyScale`
    energy_scale: EnergyScale = "other"

    @classmethod
    def identity(cls, arg: str | None) -> PotentialIdentity | None:
        """``{"potential", "version", "checkpoint_sha256"}`` of the spec ``<family>:<arg>`` without loading
        the model, or None when the family cannot tell (then the identity is the spec with "unknown"
        version and hash). Raises ConfigError for an argument the family rejects."""
        return None

    @abstractmethod
    def calculator(self) -> Calculator:
        """A fresh ASE calculator (energies in eV, forces in eV/Å, stress in eV/Å³)."""

    def evaluate(self, atoms: Sequence[Atoms]) -> list[PointEvaluation]:
        """Energy, forces and stress of ``len(atoms)`` cells; raises if any one fails."""
        calc = getattr(self, "_shared_calculator", None)
        if calc is None:
            calc = self._shared_calculator = self.calculator()
        out = []
        for cell in atoms:
            work = Atoms(cell.get_chemical_symbols(), positions=cell.positions, cell=cell.cell, pbc=cell.pbc)
            work.calc = calc
            out.append(
                PointEvaluation(
                    energy=float(work.get_potential_energy()),
                    forces=np.asarray(work.get_forces(), dtype=float),
                    stress=np.asarray(work.get_stress(), dtype=float),
                )
            )
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r})"


PotentialFactory = Callable[[str | None], Potential]

#: Registered potential families: spec prefix -> factory(argument after ':' or None). Add one with one
#: decorator line, ``@POTENTIALS.register("name")`` on a Potential subclass (or ``register_potential``);
#: registering a name twice raises :class:`~core.registry.DuplicateRegistrationError`.
POTENTIALS: Registry[PotentialFactory] = Registry("potential")


@POTENTIALS.register("chgnet")
class CHGNetPotential(Potential):
    """Pretrained CHGNet from the chgnet wheel, on the device `torch_device()` names (CPU without a GPU)."""

    MODELS = ("0.3.0", "0.2.0", "r2scan")

    @classmethod
    def _model_name(cls, arg: str | None) -> str:
        model_name = arg or "0.3.0"
        if model_name not in cls.MODELS:
            raise ConfigError(
                f"unknown CHGNet model {model_name!r}; valid: {', '.join(cls.MODELS)} (e.g. 'chgnet:r2scan')"
            )
        return model_name

    @classmethod
    def checkpoint_path(cls, arg: str | None = None) -> Path:
        """The checkpoint CHGNet.load reads: the one ``*.pth.tar`` in ``chgnet/pretrained/<model>/``."""
        folder = _package_dir("chgnet") / "pretrained" / cls._model_name(arg)
        files = sorted(folder.glob("*.pth.tar"))
        if len(files) != 1:
            raise ConfigError(f"expected one CHGNet checkpoint (*.pth.tar) in {folder}, found {len(files)}")
        return files[0]

    @classmethod
    def identity(cls, arg: str | None) -> PotentialIdentity:
        model_name = cls._model_name(arg)
        return {
            "potential": "chgnet" if model_name == "0.3.0" else f"chgnet:{model_name}",
            "version": f"chgnet {_pkg_version('chgnet')} / {model_name}",
            "checkpoint_sha256": file_sha256(cls.checkpoint_path(model_name)),
        }

    def __init__(self, model_name: str | None = None) -> None:
        identity = self.identity(model_name)
        model_name = self._model_name(model_name)
        from chgnet.model import CHGNet

        with contextlib.redirect_stdout(io.StringIO()):  # chgnet prints device/parameter banners
            self.device = torch_device()
            self.model = CHGNet.load(model_name=model_name, use_device=self.device, verbose=False)
        self.name = identity["potential"]
        self.version = identity["version"]
        self.checkpoint_sha256 = identity["checkpoint_sha256"]
        # CHGNet 0.3.0/0.2.0 learned MPtrj energies with MP2020 corrections applied: measured here with MP's
        # elemental references, LiF/NaCl/Li2O formation energies are -3.14/-2.08/-2.01 eV/atom raw (experiment
        # -3.19/-2.13/-2.07) and 0.2-0.3 eV/atom too low once MP2020 corrections are added again.
        self.energy_scale = "other" if model_name == "r2scan" else "mp2020"

    def evaluate(self, atoms: Sequence[Atoms]) -> list[PointEvaluation]:
        """All cells in one batched CHGNet forward pass and one backward pass.

        Same graphs, model and units as ``CHGNetCalculator``; see :func:`chgnet_energy_forces_stress`.
        """
        from pymatgen.core import Lattice, Structure

        if not atoms:
            return []
        structures = [
            Structure(Lattice(np.asarray(a.cell[:])), a.get_chemical_symbols(), a.positions, coords_are_cartesian=True)
            for a in atoms
        ]
        return chgnet_energy_forces_stress(self.model, structures)

    def calculator(self) -> Calculator:
        from chgnet.model.dynamics import CHGNetCalculator

        with contextlib.redirect_stdout(io.StringIO()):
            return CHGNetCalculator(model=self.model, use_device=self.device, on_isolated_atoms="ignore")


def chgnet_energy_forces_stress(model: Any, structures: Sequence[Any]) -> list[PointEvaluation]:
    """Energy, forces and stress of ``n`` structures from one CHGNet forward and one backward pass.

    ``CHGNet.predict_structure(task="efs")`` differentiates the energy twice (forces, then stress), each
    time building a second-order graph (``create_graph=True``, needed for training on forces, not for
    inference). Here the batched graph and forward pass are CHGNet's own (``BatchedGraph.from_graphs``,
    ``CHGNet._compute``); only the derivative is taken once, for positions and strains together, without
    a second-order graph. Equal to CHGNet's calculator to float32 precision (tests); one batched call on
    the 16 cells of ``benchmarks/oracle.py`` took 1.13 s against 2.83 s for ``predict_structure`` (1 thread).

    Returns:
        ``n`` evaluations: total energy (eV), forces ``(N_i, 3)`` (eV/Å), Voigt stress ``(6,)`` (eV/Å³).
    """
    import torch
    from chgnet.model.model import BatchedGraph

    if not structures:
        return []
    device = next(model.parameters()).device
    model.eval()
    graphs = [model.graph_converter(s).to(device) for s in structures]
    composition_energy = 0 if model.composition_model is None else model.composition_model(graphs)
    batch = BatchedGraph.from_graphs(
        graphs,
        bond_basis_expansion=model.bond_basis_expansion,
        angle_basis_expansion=model.angle_basis_expansion,
        compute_stress=True,
    )
    prediction = model._compute(batch, compute_force=False, compute_stress=False)
    atoms = prediction["atoms_per_graph"] if model.is_intensive else 1  # CHGNet's energies are per atom
    energy = prediction["e"]
    n = len(graphs)
    grads = torch.autograd.grad((energy * atoms).sum(), [*batch.atom_positions, *batch.strains])
    total = (energy + composition_energy).detach().double() * atoms  # eV per cell, scaled in float64
    out = []
    for i in range(n):
        stress = (grads[n + i] / batch.volumes[i]).detach().cpu().numpy()  # (1/V) dE/dstrain, eV/Å³
        out.append(
            PointEvaluation(
                energy=float(total[i]),
                forces=(-grads[i]).detach().cpu().numpy().astype(float),
                stress=stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]].astype(float),
            )
        )
    return out


def _looks_like_local_path(arg: str) -> bool:
    return arg.startswith(("/", "./", "../", "~")) or (os.sep in arg and Path(arg).expanduser().exists())


def files_sha256(paths: Sequence[Path]) -> str:
    """One sha256 hex for a checkpoint made of several files: the sha256 of the lines
    ``"<file name> <sha256 of the file>\n"`` in the given order."""
    manifest = "".join(f"{Path(path).name} {file_sha256(path)}\n" for path in paths)
    return hashlib.sha256(manifest.encode()).hexdigest()


def _matgl_hub_files(name: str) -> list[Path] | None:
    """The files of a pretrained MatGL model already in matgl's Hugging Face cache, or None (never downloads)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with matgl
        return None
    repo_id = name if "/" in name else f"materialyze/{name}"  # matgl's default organisation for bare names
    cache_dir = Path.home() / ".cache" / "matgl"  # matgl.config.MATGL_CACHE, without importing matgl (~6 s)
    found = []
    for fname in _MATGL_MODEL_FILES:
        try:
            path = try_to_load_from_cache(repo_id=repo_id, filename=fname, cache_dir=cache_dir)
        except Exception:  # e.g. a name that is not a valid repo id
            return None
        if not isinstance(path, str):
            return None
        found.append(Path(path))
    return found


@POTENTIALS.register("matgl")
class MatGLPotential(Potential):
    """A MatGL PES model loaded by ``matgl.load_model`` (a local folder or a pretrained name).

    ``checkpoint_sha256`` covers the three files of the model folder (:func:`files_sha256` of
    ``model.pt``, ``state.pt``, ``model.json``: ``model.pt`` holds only the constructor arguments, the
    weights are in ``state.pt``). A pretrained *name* is not pinned (the Hub may serve new files): its
    identity says "unknown", so an oracle key stays the same before and after the first download, and
    the loaded potential records the hash of the files matgl cached. Use a local folder to pin a model.
    """

    @staticmethod
    def _resolve(name_or_path: str | None) -> tuple[str, Path | None]:
        """(the argument matgl loads, the local folder or None for a pretrained name)."""
        if not name_or_path:
            raise ConfigError("matgl potential needs a model: 'matgl:<pretrained name or local folder>'")
        if _looks_like_local_path(name_or_path):
            folder = Path(name_or_path).expanduser()
            missing = [f for f in _MATGL_MODEL_FILES if not (folder / f).is_file()]
            if missing:
                raise ConfigError(
                    f"matgl model folder {str(folder)!r} is missing {', '.join(missing)} "
                    "(expected a folder saved by matgl: model.pt, state.pt, model.json)"
                )
            return str(folder), folder
        return name_or_path, None

    @classmethod
    def identity(cls, arg: str | None) -> PotentialIdentity:
        name_or_path, folder = cls._resolve(arg)
        return {
            "potential": f"matgl:{name_or_path}",
            "version": f"matgl {_pkg_version('matgl')} / {Path(name_or_path).name or name_or_path}",
            "checkpoint_sha256": UNKNOWN if folder is None else files_sha256([folder / f for f in _MATGL_MODEL_FILES]),
        }

    def __init__(self, name_or_path: str | None = None) -> None:
        name_or_path, _ = self._resolve(name_or_path)
        import matgl

        try:
            self.model = matgl.load_model(name_or_path)
        except Exception as exc:  # matgl wraps everything in ValueError/RuntimeError
            cause = exc.__cause__ or exc
            detail = f"{type(cause).__name__}: {cause}".splitlines()[0]
            raise ConfigError(f"cannot load matgl model {name_or_path!r}: {detail}") from exc
        identity = self.identity(name_or_path)
        self.name = identity["potential"]
        self.version = identity["version"]
        self.checkpoint_sha256 = identity["checkpoint_sha256"]
        if self.checkpoint_sha256 == UNKNOWN:  # a pretrained name: the files matgl loaded are in its cache now
            files = _matgl_hub_files(name_or_path)
            self.checkpoint_sha256 = files_sha256(files) if files else UNKNOWN
        label = Path(name_or_path).name
        # M3GNet-MP-2021 learned raw MP GGA/GGA+U energies; MPtrj models learned MP2020-corrected ones;
        # MatPES (PBE without U, r2SCAN) and unknown models are not on the MP scale.
        self.energy_scale = "mp_raw" if "MP-2021" in label else "mp2020" if "MPtrj" in label else "other"

    def calculator(self) -> Calculator:
        from matgl.ext.ase import PESCalculator

        # ASE optimizers and cell filters need stress in eV/Å³, not matgl's default GPa.
        return PESCalculator(self.model, stress_unit="eV/A3")


_CACHE: dict[str, Potential] = {}
_LOCK = threading.Lock()


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split ``"family:argument"`` into its parts (argument None when absent)."""
    family, sep, arg = spec.strip().partition(":")
    return family.strip().lower(), (arg.strip() or None) if sep else None


def register_potential(name: str, factory: PotentialFactory, *, overwrite: bool = False) -> None:
    """Add a potential family to the registry (e.g. a test double); a taken name raises
    :class:`~core.registry.DuplicateRegistrationError` unless ``overwrite`` (which also drops its cached instances)."""
    if overwrite:
        POTENTIALS.remove(name)
    POTENTIALS.add(name, factory)
    clear_potential_cache(name)


def unregister_potential(name: str) -> None:
    """Remove a potential family and its cached instances (unknown names are ignored)."""
    POTENTIALS.remove(name)
    clear_potential_cache(name)


def clear_potential_cache(family: str | None = None) -> None:
    """Forget loaded potentials (all, or those of one family)."""
    with _LOCK:
        for key in [k for k in _CACHE if family is None or parse_spec(k)[0] == family]:
            del _CACHE[key]


def _family(spec: str) -> tuple[str, str | None, PotentialFactory]:
    family, arg = parse_spec(spec)
    if family not in POTENTIALS:
        valid = ", ".join(f"'{k}'" if k != "matgl" else "'matgl:<name or folder>'" for k in POTENTIALS)
        raise ConfigError(f"unknown potential {spec!r}; valid: {valid}")
    return family, arg, POTENTIALS[family]


def potential_identity(spec: str) -> PotentialIdentity:
    """``{"potential": normalised spec, "version": ..., "checkpoint_sha256": ...}`` of ``spec`` without
    loading the model (the checkpoint file in the installed wheel is hashed, once per process).

    The family's classmethod ``identity(arg)`` answers when it has one (CHGNet, SevenNet, MatGL); other
    families (test doubles) give the spec itself with version and hash "unknown". ConfigError for an
    unknown family or a model the family rejects. E.g. ``potential_identity("sevennet")["potential"] ==
    "sevennet:7net-0"``.
    """
    family, arg, factory = _family(spec)
    hook = getattr(factory, "identity", None)
    found = hook(arg) if callable(hook) else None
    if found is None:
        return {
            "potential": family if arg is None else f"{family}:{arg}",
            "version": UNKNOWN,
            "checkpoint_sha256": UNKNOWN,
        }
    return dict(found)


def get_potential(spec: str = DEFAULT_POTENTIAL) -> Potential:
    """The potential for ``spec`` (loaded once per process, shared by specs naming the same model, e.g.
    ``sevennet`` and ``sevennet:7net-0``); ConfigError if unknown or unloadable."""
    _, arg, factory = _family(spec)
    key = potential_identity(spec)["potential"]
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is None:
            cached = _CACHE[key] = factory(arg)
        return cached


def available_potentials() -> list[str]:
    """The registered potential families, sorted."""
    return POTENTIALS.names()
