"""SevenNet potentials from the ``sevenn`` wheel (MIT): ``sevennet:7net-0``, ``sevennet:7net-l3i5``,
``sevennet:7net-mf-0``, registered in :data:`oracle.potentials.POTENTIALS` on import (``oracle`` imports this
module, so the family is there wherever a spec is taken)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from core.errors import ConfigError
from oracle.potentials import (
    POTENTIALS,
    EnergyScale,
    PointEvaluation,
    Potential,
    PotentialIdentity,
    _package_dir,
    _pkg_version,
    file_sha256,
    torch_device,
)


@dataclass(frozen=True)
class _SevenNetModel:
    """A pretrained SevenNet checkpoint in the sevenn wheel: its file under ``pretrained_potentials/`` and
    the modal (fidelity head) to evaluate, None for single-fidelity models."""

    file: str
    modal: str | None = None


@POTENTIALS.register("sevennet")
class SevenNetPotential(Potential):
    """Pretrained SevenNet from the sevenn wheel (MIT), on the device `torch_device()` names.

    Specs: ``sevennet`` = ``sevennet:7net-0`` (SevenNet-0, 11Jul2024 checkpoint), ``sevennet:7net-l3i5``,
    ``sevennet:7net-mf-0`` (SevenNet-MF-0 evaluated with its ``PBE`` head: the checkpoint's modal map is
    ``{'R2SCAN': 0, 'PBE': 1}``, ``PBE`` being MPtrj's GGA/GGA+U data and the checkpoint's default modal;
    the r2SCAN head is not on the MP scale and is not offered). The checkpoint file is opened by path, so
    sevenn's download fallback is never used.

    Energy scale ``mp_raw``: SevenNet learned MPtrj's *uncorrected* GGA/GGA+U energies (l3i5's training
    set in its checkpoint config is ``chgnet_total_dataset_uncorrected``). Single points on MP's
    structures with MP's elemental references: with MP2020 corrections added, the formation energies of
    LiNiO2, MnO2, ZnF2, KMnF3, AlF3, NaYS2, AlNi and Li2Pt are within 0.022 eV/atom of MP's for 7net-0
    and l3i5 and 0.040 for mf-0 (CHGNet as it is: 0.049); without them, 0.25-1.05 eV/atom too high
    wherever a correction applies (tests/oracle/test_oracle_sevennet.py).

    ``evaluate`` batches: every cell's graph (sevenn's own ``unlabeled_atoms_to_graph``, as its ASE
    calculator builds it) goes into one torch_geometric batch, one forward pass, and one gradient of
    the summed energy for forces and stresses (sevenn's ``ForceStressOutputFromEdge`` in batch mode,
    as used in its training and torch-sim interface). Equal to ``SevenNetCalculator`` to float32
    precision (tests). Measured (1 torch thread, 8 rattled and strained cells of 1-8 atoms, 23 atoms in
    all, per call): 7net-0 0.30 s batched against 0.47 s for the per-cell calculator loop, l3i5 0.77 s
    against 1.00 s, mf-0 0.29 s against 0.50 s (CHGNet's batched call: 0.14 s).
    """

    MODELS: ClassVar[dict[str, _SevenNetModel]] = {
        "7net-0": _SevenNetModel("SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth"),
        "7net-l3i5": _SevenNetModel("SevenNet_l3i5/checkpoint_l3i5.pth"),
        "7net-mf-0": _SevenNetModel("SevenNet_MF_0/checkpoint_sevennet_mf_0.pth", modal="PBE"),
    }
    DEFAULT_MODEL = "7net-0"
    energy_scale: EnergyScale = "mp_raw"

    @classmethod
    def _model_name(cls, arg: str | None) -> str:
        name = (arg or cls.DEFAULT_MODEL).strip().lower()
        if name not in cls.MODELS:
            valid = ", ".join(f"'sevennet:{m}'" for m in cls.MODELS)
            raise ConfigError(f"unknown SevenNet model {arg!r}; valid: {valid} ('sevennet' = 'sevennet:7net-0')")
        return name

    @classmethod
    def checkpoint_path(cls, arg: str | None = None) -> Path:
        """The checkpoint file of the model in ``sevenn/pretrained_potentials/`` (found without importing sevenn)."""
        path = _package_dir("sevenn") / "pretrained_potentials" / cls.MODELS[cls._model_name(arg)].file
        if not path.is_file():
            raise ConfigError(f"SevenNet checkpoint not found in the sevenn wheel: {path}")
        return path

    @classmethod
    def identity(cls, arg: str | None) -> PotentialIdentity:
        name = cls._model_name(arg)
        model = cls.MODELS[name]
        path = cls.checkpoint_path(name)
        head = f" (modal {model.modal})" if model.modal else ""
        return {
            "potential": f"sevennet:{name}",
            "version": f"sevenn {_pkg_version('sevenn')} / {path.parent.name}{head}",
            "checkpoint_sha256": file_sha256(path),
        }

    def __init__(self, model_name: str | None = None) -> None:
        identity = self.identity(model_name)
        spec = self.MODELS[self._model_name(model_name)]
        from sevenn.util import load_checkpoint

        self.device = torch_device()
        self.modal = spec.modal
        self._checkpoint = load_checkpoint(str(self.checkpoint_path(model_name)))  # a file path: no download
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no tensor product accelerator" and the like
            self.model = self._checkpoint.build_model()
        self.model.set_is_batch_data(True)  # batched graphs in `evaluate`; calculators get their own model
        self.model.to(self.device).eval()
        self._calculator_model: Any = None
        self._build_lock = threading.Lock()
        self.name = identity["potential"]
        self.version = identity["version"]
        self.checkpoint_sha256 = identity["checkpoint_sha256"]

    def evaluate(self, atoms: Sequence[Atoms]) -> list[PointEvaluation]:
        """All cells in one batched SevenNet forward and backward pass (see the class docstring)."""
        return sevennet_energy_forces_stress(self.model, atoms, modal=self.modal)

    def calculator(self) -> Calculator:
        """sevenn's ``SevenNetCalculator`` on a second copy of the model (built once, ~1.5 s): the
        calculator switches its model to unbatched mode, which the batched ``evaluate`` cannot share."""
        from sevenn.calculator import SevenNetCalculator

        with self._build_lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self._calculator_model is None:
                self._calculator_model = self._checkpoint.build_model()
            return SevenNetCalculator(
                model=self._calculator_model, file_type="model_instance", device=self.device, modal=self.modal
            )


def sevennet_energy_forces_stress(
    model: Any, atoms: Sequence[Atoms], *, modal: str | None = None
) -> list[PointEvaluation]:
    """Energy, forces and stress of ``n`` cells from one batched SevenNet pass.

    ``model`` is a sevenn ``AtomGraphSequential`` in batch mode (``set_is_batch_data(True)``); ``modal``
    the fidelity head of a multi-fidelity model. Graphs are built as ``SevenNetCalculator`` builds them.

    Returns:
        ``n`` evaluations: total energy (eV), forces ``(N_i, 3)`` (eV/Å), Voigt stress ``(6,)`` (eV/Å³,
        ASE's sign convention).

    Raises:
        ValueError: a cell holds an element the model was not trained on.
    """
    import sevenn._keys as KEY
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import unlabeled_atoms_to_graph
    from torch_geometric.data import Batch

    if not atoms:
        return []
    device = next(model.parameters()).device
    known = set(model.type_map)
    graphs = []
    for cell in atoms:
        unknown = sorted({int(z) for z in cell.numbers} - known)
        if unknown:
            raise ValueError(f"SevenNet was not trained on atomic numbers {unknown}")
        graph = AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(cell, model.cutoff, with_shift=False))
        if modal:
            graph[KEY.DATA_MODALITY] = modal
        graphs.append(graph)
    output = model(Batch.from_data_list(graphs).to(device))
    energy = output[KEY.PRED_TOTAL_ENERGY].detach().cpu().double().numpy()
    forces = output[KEY.PRED_FORCE].detach().cpu().double().numpy()
    # sevenn's stress is (xx, yy, zz, xy, yz, zx) with the opposite sign; ASE's Voigt order is xx yy zz yz xz xy
    stress = (-output[KEY.PRED_STRESS]).detach().cpu().double().numpy()[:, [0, 1, 2, 4, 5, 3]]
    bounds = np.cumsum([0, *(len(cell) for cell in atoms)])
    return [
        PointEvaluation(energy=float(energy[i]), forces=forces[bounds[i] : bounds[i + 1]], stress=stress[i])
        for i in range(len(atoms))
    ]
