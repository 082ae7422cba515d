"""The oracle: relax candidate structures with pretrained potentials and score formation energies."""

from oracle.potentials import (
    DEFAULT_POTENTIAL,
    POTENTIALS,
    CHGNetPotential,
    MatGLPotential,
    Potential,
    available_potentials,
    clear_potential_cache,
    get_potential,
    potential_identity,
    register_potential,
    unregister_potential,
)
from oracle.references import (
    ElementalReferences,
    ReferenceEnergy,
    clear_memory_cache,
    default_mp_references_path,
    load_mp_reference_entries,
)
from oracle.relax import RelaxationResult, RelaxConfig, relax_many, relax_structure
from oracle.sevennet import SevenNetPotential  # registers the 'sevennet' family

__all__ = [
    "DEFAULT_POTENTIAL",
    "POTENTIALS",
    "CHGNetPotential",
    "ElementalReferences",
    "MatGLPotential",
    "Potential",
    "ReferenceEnergy",
    "RelaxConfig",
    "RelaxationResult",
    "SevenNetPotential",
    "available_potentials",
    "clear_memory_cache",
    "clear_potential_cache",
    "default_mp_references_path",
    "get_potential",
    "load_mp_reference_entries",
    "potential_identity",
    "register_potential",
    "relax_many",
    "relax_structure",
    "unregister_potential",
]
