"""Interactive explorers for the lecture notebooks.

Each explorer is a thin ipywidgets front end over a pure function.
The pure function is what the tests and the benchmarks call;
the ``*_explorer()`` builders return an ``ipywidgets.Widget`` ready to display.
"""

from ._barrier import LM_CUTOFFS, SUGAR_PROTOCOLS, leak_curve, leak_explorer, sugar_test_scenario
from ._diversity import (
    alpha_explorer,
    alpha_profile,
    composition_explorer,
    compositional_shift,
    rarefaction_explorer,
    rarefaction_view,
)
from ._immune import GUT_SHARE_ESTIMATES, immune_census_check, immune_census_explorer
from ._markers import cutoff_explorer, cutoff_performance, roc_table
from ._ordination import ordination_explorer, ordination_view
from ._study import chance_explorer, chance_findings, power_explorer, two_group_power

__all__: list[str] = [
    "compositional_shift",
    "composition_explorer",
    "alpha_profile",
    "alpha_explorer",
    "rarefaction_view",
    "rarefaction_explorer",
    "ordination_view",
    "ordination_explorer",
    "two_group_power",
    "power_explorer",
    "chance_findings",
    "chance_explorer",
    "GUT_SHARE_ESTIMATES",
    "immune_census_check",
    "immune_census_explorer",
    "LM_CUTOFFS",
    "SUGAR_PROTOCOLS",
    "sugar_test_scenario",
    "leak_curve",
    "leak_explorer",
    "cutoff_performance",
    "roc_table",
    "cutoff_explorer",
]
