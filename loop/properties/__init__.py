"""Registered property providers (importing this package registers the built-in ones)."""

from loop.properties.base import Property, PropertyInputs, combine_samples
from loop.properties.hull import HullProperty
from loop.properties.models import BandGapProperty, ConductivityProperty, ModelProperty

__all__ = [
    "BandGapProperty",
    "ConductivityProperty",
    "HullProperty",
    "ModelProperty",
    "Property",
    "PropertyInputs",
    "combine_samples",
]
