"""Structure identity shared by generation, replay pools, ingest seeding and cleaning.

The science layer's lowest package after :mod:`core`: imports pymatgen and ``core`` only.
"""

from structures.identity import MATCHER_SETTINGS, coarse_fingerprint, deduplicate, matcher, same_structure

__all__ = ["MATCHER_SETTINGS", "coarse_fingerprint", "deduplicate", "matcher", "same_structure"]
