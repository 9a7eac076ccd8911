"""Interactive explorers for the lecture notebooks.

Each explorer is a thin ipywidgets front end over a pure function.
The pure function is what the tests and the benchmarks call;
the ``*_explorer()`` builders return an ``ipywidgets.Widget`` ready to display.
"""

__all__: list[str] = []
