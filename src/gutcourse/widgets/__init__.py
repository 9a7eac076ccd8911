"""Interactive explorers for the lecture notebooks.

Each explorer is a thin ipywidgets front end over a pure function.
The pure function is what the tests and the benchmarks call;
the ``*_explorer()`` builders return an ``ipywidgets.Widget`` ready to display.
"""

import importlib

_WHERE = {
    "LM_CUTOFFS": "_barrier",
    "SUGAR_PROTOCOLS": "_barrier",
    "leak_curve": "_barrier",
    "leak_explorer": "_barrier",
    "sugar_test_scenario": "_barrier",
    "alpha_explorer": "_diversity",
    "alpha_profile": "_diversity",
    "composition_explorer": "_diversity",
    "compositional_shift": "_diversity",
    "rarefaction_explorer": "_diversity",
    "rarefaction_view": "_diversity",
    "GUT_SHARE_ESTIMATES": "_immune",
    "immune_census_check": "_immune",
    "immune_census_explorer": "_immune",
    "cutoff_explorer": "_markers",
    "cutoff_performance": "_markers",
    "roc_table": "_markers",
    "EXCLUSION_SETTINGS": "_mucosa",
    "MARKER_HALF_LIVES": "_mucosa",
    "exclusion_explorer": "_mucosa",
    "exclusion_profile": "_mucosa",
    "marker_kinetics": "_mucosa",
    "marker_kinetics_explorer": "_mucosa",
    "marker_time_course": "_mucosa",
    "ordination_explorer": "_ordination",
    "ordination_view": "_ordination",
    "chance_explorer": "_study",
    "chance_findings": "_study",
    "power_explorer": "_study",
    "two_group_power": "_study",
}

# Everything the map above names, and nothing else: one list to keep up to date.
__all__: list[str] = sorted(_WHERE)


def __getattr__(name):
    # Lazy import: a notebook importing one explorer does not pay for the others' SciPy imports.
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
