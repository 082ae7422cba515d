"""Elemental reference energies (chemical potentials) for formation energies.

Two sources:

* ``"ase"`` (default): the element's reference state from ``ase.data.reference_states`` built
  with ``ase.build.bulk`` (bcc, fcc, hcp, diamond, ...) and relaxed (cell and positions) with the
  *same* potential. Molecular elements (H, N, O, F, Cl, Br, I) are a diatomic molecule in a large
  periodic box, positions relaxed only.
* ``"mp"``: the Materials Project elemental reference entries (the Matbench Discovery file,
  gzip JSON ``{element: ComputedEntry dict}``). Entries that carry a structure
  (ComputedStructureEntry) are relaxed with the potential; entries without one (the 2023-02-07
  file has none) contribute their MP GGA energy per atom directly. That is consistent only for
  potentials trained to reproduce MP energies (CHGNet, M3GNet/CHGNet-style MPtrj models).
* ``"auto"``: ``"ase"`` where ASE has a usable reference state, else ``"mp"`` for that element
  (S, P, Mn, B, Ga, ... whose ASE reference states lack an atomic basis).

Computed energies are cached on disk as JSON (``<cache>/references/<potential-slug>.json``,
keyed by element) and in process memory.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Literal

from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, covalent_radii, reference_states
from pydantic import BaseModel, Field
from pymatgen.core import Composition, Element, Species, Structure
from pymatgen.core.periodic_table import get_el_sp
from pymatgen.io.ase import AseAtomsAdaptor

from core import paths
from core.errors import ConfigError, DiscoveryError
from oracle.formation import formation_energy_per_atom
from oracle.potentials import DEFAULT_POTENTIAL, get_potential
from oracle.relax import RelaxConfig, relax_structure

#: Default location of the MP elemental reference entries (never downloaded).
MP_REFERENCES_FILE = "2023-02-07-mp-elemental-reference-entries.json.gz"
#: Environment variable overriding :func:`default_mp_references_path`.
ENV_MP_REFERENCES = "BATTERY_DISCOVERY_MP_REFERENCES"
#: Where the file is published (Matbench Discovery's figshare record of the 2023-02-07 MP snapshot).
MP_REFERENCES_URL = "https://figshare.com/ndownloader/files/40387775"
#: Set to 1 to forbid downloads (``HF_HUB_OFFLINE=1`` counts too).
ENV_OFFLINE = "BATTERY_DISCOVERY_OFFLINE"


def offline() -> bool:
    """Whether downloads are forbidden (``$BATTERY_DISCOVERY_OFFLINE`` or ``$HF_HUB_OFFLINE`` set to 1)."""
    return any(
        os.environ.get(var, "").strip().lower() in ("1", "true", "yes") for var in (ENV_OFFLINE, "HF_HUB_OFFLINE")
    )


def fetch_mp_references(dest: Path | str | None = None, url: str | None = None) -> Path:
    """Download the MP elemental reference file to ``dest`` (default: the project's cache); returns the path.

    Raises:
        ConfigError: offline, or the download failed (the message says how to point at a local copy).
    """
    dest = Path(dest) if dest is not None else paths.data_home() / "cache" / "mp" / MP_REFERENCES_FILE
    url = url or MP_REFERENCES_URL
    hint = f"put a copy at {dest} or set {ENV_MP_REFERENCES} to its path"
    if offline():
        raise ConfigError(
            f"MP elemental reference file needed but downloads are off ({ENV_OFFLINE}/HF_HUB_OFFLINE); {hint}"
        )
    import urllib.request

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".download-")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, os.fdopen(fd, "wb") as handle:
            handle.write(response.read())
        with gzip.open(tmp, "rt") as check:
            json.load(check)
        os.replace(tmp, dest)
    except Exception as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot download the MP elemental reference file from {url}: {exc}; {hint}") from exc
    return dest


def default_mp_references_path() -> Path:
    """Where the MP elemental reference file is looked for.

    ``$BATTERY_DISCOVERY_MP_REFERENCES`` first; then ``../shared/data/mp/`` beside the checkout (the
    offline copy CI has); then the project's cache (``<data home>/cache/mp/``).
    """
    env = os.environ.get(ENV_MP_REFERENCES)
    if env:
        return Path(env)
    root = paths.project_root()
    if root is not None:
        shared = root.parent / "shared" / "data" / "mp" / MP_REFERENCES_FILE
        if shared.is_file():
            return shared
    return paths.data_home() / "cache" / "mp" / MP_REFERENCES_FILE


#: Elements whose standard state is a diatomic molecule (gas, liquid Br2 or molecular solid I2).
MOLECULAR_ELEMENTS = frozenset({"H", "N", "O", "F", "Cl", "Br", "I"})

#: Default relaxation settings for references: tighter than for candidates.
DEFAULT_REFERENCE_CONFIG = RelaxConfig(fmax=0.02, max_steps=500)

_MEMORY: dict[tuple[str, str, str], ReferenceEnergy] = {}
_MEMORY_LOCK = threading.Lock()


class ReferenceEnergy(BaseModel):
    """The reference chemical potential of one element for one potential."""

    element: str = Field(description="Element symbol.")
    energy_per_atom: float = Field(description="Reference energy (eV/atom).")
    source: str = Field(
        description="Where the reference state came from, e.g. 'ase:bcc', 'ase:diatom in 15.0 Å box', "
        "'mp:mp-1018134-GGA (relaxed)' or 'mp:mp-1018134-GGA (DFT energy)'."
    )
    n_atoms: int = Field(description="Atoms in the reference cell.")
    status: str = Field(description="Relaxation status ('converged', 'unconverged', or 'dft' if not relaxed).")
    potential: str = Field(description="Potential spec (or the MP functional for DFT energies).")
    potential_version: str = Field(description="Potential package and model version.")
    settings: str = Field(description="Fingerprint of the settings that produced this value.")
    elapsed_s: float = Field(0.0, description="Time to compute (s).")
    relaxed_structure: dict[str, Any] | None = Field(None, description="Relaxed reference cell (Å).")


def clear_memory_cache() -> None:
    """Forget in-process reference energies (the disk cache stays)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "potential"


def _diatomic(symbol: str, box: float) -> Atoms:
    state = reference_states[atomic_numbers[symbol]] or {}
    bond = state.get("d") if state.get("symmetry") == "diatom" else None
    bond = bond or 2 * covalent_radii[atomic_numbers[symbol]]
    atoms = Atoms([symbol, symbol], positions=[[0, 0, 0], [0, 0, bond]], cell=[box, box, box], pbc=True)
    atoms.center()
    return atoms


def _settings_doc(config: RelaxConfig, source: str, box_size: float, mp_file: str | None) -> dict[str, Any]:
    return {
        "source": source,
        "config": config.model_dump(exclude={"potential", "timeout_s"}),
        "box_size": float(box_size),
        "mp_file": mp_file,
    }


class ElementalReferences:
    """Elemental reference energies for one potential, cached on disk and in memory."""

    def __init__(
        self,
        potential_spec: str = DEFAULT_POTENTIAL,
        cache_dir: Path | None = None,
        config: RelaxConfig | None = None,
        *,
        source: Literal["ase", "mp", "auto"] = "ase",
        mp_path: Path | str | None = None,
        box_size: float = 15.0,
    ) -> None:
        if source not in ("ase", "mp", "auto"):
            raise ConfigError(f"unknown reference source {source!r}; valid: 'ase', 'mp', 'auto'")
        if config is None:
            config = DEFAULT_REFERENCE_CONFIG.model_copy(update={"potential": potential_spec})
        elif config.potential != potential_spec:
            raise ConfigError(
                f"reference config uses potential {config.potential!r} but references are for "
                f"{potential_spec!r}; they must be the same"
            )
        if box_size < 8:
            raise ConfigError(f"box_size {box_size} Å is too small for isolated molecules (use >= 8 Å)")
        self.potential_spec = potential_spec
        self.config = config
        self.source = source
        self.box_size = float(box_size)
        self.mp_path = Path(mp_path) if mp_path else default_mp_references_path()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else paths.subdir("cache") / "references"
        self.n_computed = 0  #: references computed (relaxed) by this instance, i.e. cache misses
        self._mp_entries: dict[str, dict[str, Any]] | None = None
        self._potential = get_potential(potential_spec)
        mp_file = self.mp_path.name if source != "ase" else None
        self.settings_doc = _settings_doc(config, source, self.box_size, mp_file)
        digest = hashlib.sha1(json.dumps(self.settings_doc, sort_keys=True).encode()).hexdigest()
        self.settings = digest[:12]  #: fingerprint of source, relaxation config and box size
        name = _slug(f"{self._potential.name}__{self._potential.version}")
        is_default = self.settings_doc == _settings_doc(DEFAULT_REFERENCE_CONFIG, "ase", 15.0, None)
        suffix = "" if is_default else f"__{self.settings}"
        #: The JSON file holding this potential's reference energies for these settings.
        self.cache_file = self.cache_dir / f"{name}{suffix}.json"

    # -- public API --------------------------------------------------------------------------------

    def energy_per_atom(self, element: str | Element | Species) -> float:
        """Reference chemical potential of ``element`` (eV/atom)."""
        return self.reference(element).energy_per_atom

    def formation_energy_per_atom(self, composition: Composition | str, energy_total: float) -> float:
        """(E_total - Σ n_i μ_i) / N for a cell of ``composition`` with total energy ``energy_total`` (eV)."""
        return formation_energy_per_atom(composition, energy_total, self.energy_per_atom)

    def reference(self, element: str | Element | Species) -> ReferenceEnergy:
        """The full reference record for ``element`` (computed once, then cached)."""
        symbol = self._symbol(element)
        key = (str(self.cache_file), symbol, self.settings)
        with _MEMORY_LOCK:
            hit = _MEMORY.get(key)
        if hit is not None:
            return hit
        entry = self._read_disk().get(symbol)
        if entry is None or entry.settings != self.settings:
            entry = self._compute(symbol)
            if entry.status != "dft":
                self._write_disk(entry)
        with _MEMORY_LOCK:
            _MEMORY[key] = entry
        return entry

    # -- internals ---------------------------------------------------------------------------------

    @staticmethod
    def _symbol(element: str | Element | Species) -> str:
        try:
            parsed = get_el_sp(element.strip() if isinstance(element, str) else element)
            return Element(parsed.symbol if isinstance(parsed, Element) else parsed.element.symbol).symbol
        except Exception as exc:
            raise ConfigError(f"not an element: {element!r}") from exc

    def _read_disk(self) -> dict[str, ReferenceEnergy]:
        path = self.cache_file
        if not path.is_file():
            return {}
        try:
            raw = json.loads(path.read_text())
            return {el: ReferenceEnergy.model_validate(doc) for el, doc in raw.get("elements", {}).items()}
        except (OSError, ValueError):
            return {}  # a corrupt cache is recomputed, not fatal

    def _write_disk(self, entry: ReferenceEnergy) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        current = self._read_disk()  # merge with whatever another process wrote meanwhile
        current[entry.element] = entry
        doc = {
            "potential": self._potential.name,
            "potential_version": self._potential.version,
            "units": "eV/atom",
            "settings": self.settings_doc,
            "elements": {el: current[el].model_dump() for el in sorted(current)},
        }
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".refs-", suffix=".json")
        with os.fdopen(fd, "w") as handle:
            json.dump(doc, handle, indent=1)
        os.replace(tmp, self.cache_file)

    def _compute(self, symbol: str) -> ReferenceEnergy:
        if self.source != "mp":
            try:
                atoms, label, config = self._ase_reference(symbol)
            except ConfigError:
                if self.source == "ase":
                    raise
            else:
                return self._relax(symbol, AseAtomsAdaptor.get_structure(atoms), label, config)
        entry = self._mp_entry(symbol)
        entry_id = entry.get("entry_id", "?")
        structure = entry.get("structure")
        if structure is None:  # plain ComputedEntry: take the DFT energy as the reference
            energy = float(entry["energy"]) + float(entry.get("correction") or 0.0)
            n_atoms = Composition(entry["composition"]).num_atoms
            parameters = entry.get("parameters") if isinstance(entry.get("parameters"), dict) else {}
            return ReferenceEnergy(
                element=symbol,
                energy_per_atom=energy / n_atoms,
                source=f"mp:{entry_id} (DFT energy)",
                n_atoms=round(n_atoms),
                status="dft",
                potential=f"MP {parameters.get('run_type', 'GGA')}",
                potential_version=self.mp_path.name,
                settings=self.settings,
            )
        return self._relax(symbol, Structure.from_dict(structure), f"mp:{entry_id} (relaxed)", self.config)

    def _ase_reference(self, symbol: str) -> tuple[Atoms, str, RelaxConfig]:
        state = reference_states[atomic_numbers[symbol]]
        if symbol in MOLECULAR_ELEMENTS or (state and state.get("symmetry") == "diatom"):
            config = self.config.model_copy(update={"relax_cell": False})
            return _diatomic(symbol, self.box_size), f"ase:diatom in {self.box_size} Å box", config
        if not state:
            raise ConfigError(f"no ASE reference state for {symbol}; use source='mp'")
        try:
            atoms = bulk(symbol)
        except Exception as exc:
            raise ConfigError(
                f"no usable ASE reference state for {symbol} ({state.get('symmetry')}: "
                f"{type(exc).__name__}: {exc}); use source='mp'"
            ) from exc
        return atoms, f"ase:{state.get('symmetry')}", self.config

    def _relax(self, symbol: str, structure: Structure, label: str, config: RelaxConfig) -> ReferenceEnergy:
        start = time.monotonic()
        result = relax_structure(structure, config, potential=self._potential)
        self.n_computed += 1
        if result.status == "failed" or result.energy_per_atom is None:
            raise DiscoveryError(f"reference for {symbol} ({label}) failed: {result.reason}")
        return ReferenceEnergy(
            element=symbol,
            energy_per_atom=result.energy_per_atom,
            source=label,
            n_atoms=result.n_sites,
            status=result.status,
            potential=result.potential,
            potential_version=result.potential_version,
            settings=self.settings,
            elapsed_s=time.monotonic() - start,
            relaxed_structure=result.relaxed_structure,
        )

    def _mp_entry(self, symbol: str) -> dict[str, Any]:
        if self._mp_entries is None:
            self._mp_entries = load_mp_reference_entries(self.mp_path)
        entry = self._mp_entries.get(symbol)
        if entry is None:
            raise ConfigError(f"no MP reference entry for {symbol} in {self.mp_path}")
        return entry


def load_mp_reference_entries(path: Path | str | None = None) -> dict[str, dict[str, Any]]:
    """Read the MP elemental reference entries file (gzip or plain JSON ``{element: entry dict}``).

    Some fields in the 2023-02-07 file are Python-literal strings (e.g. ``"{'O': 8.0}"``);
    they are parsed back into numbers and dicts.
    """
    path = Path(path) if path is not None else default_mp_references_path()
    if not path.is_file() and path == paths.data_home() / "cache" / "mp" / MP_REFERENCES_FILE:
        fetch_mp_references(path)  # the default cache location: fill it from the source
    if not path.is_file():
        raise ConfigError(
            f"MP elemental reference file not found: {path} (set {ENV_MP_REFERENCES} or pass mp_path; "
            "only the default cache location is downloaded into)"
        )
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as handle:
            raw = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read MP elemental reference file {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"MP elemental reference file {path} is not a JSON object keyed by element")
    return {str(el): {k: _literal(v) for k, v in doc.items()} for el, doc in raw.items()}


def _literal(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[-0123456789":
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value
