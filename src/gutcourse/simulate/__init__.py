"""Seeded generators of every file in ``datasets/``.

All course data are synthetic: simulated from published summary statistics (sources
in ``datasets/README.md``), never downloaded. Each dataset draws from its own random
stream, ``numpy.random.default_rng([MASTER_SEED, hash(name)])``, so changing one
generator leaves the other files byte-identical.

``gutcourse data build`` calls `build`; ``gutcourse data check`` calls `check`.

Examples
--------
>>> from gutcourse import simulate
>>> simulate.check()
[]
"""

from ._build import build, check
from ._tables import MASTER_SEED

__all__ = ["MASTER_SEED", "build", "check"]
