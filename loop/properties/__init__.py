"""Registered property providers (importing this package registers the built-in ones)."""

from loop.properties.base import Property, PropertyInputs, combine_samples
from loop.properties.electrochem import (
    CapacityProperty,
    EnergyDensityProperty,
    WindowHighProperty,
    WindowLowProperty,
)
from loop.properties.hull import HullProperty
from loop.properties.models import BandGapProperty, ConductivityProperty, ModelProperty

__all__ = [
    "BandGapProperty",
    "CapacityProperty",
    "ConductivityProperty",
    "EnergyDensityProperty",
    "HullProperty",
    "ModelProperty",
    "Property",
    "PropertyInputs",
    "WindowHighProperty",
    "WindowLowProperty",
    "combine_samples",
]
