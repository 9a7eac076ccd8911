"""Run a function right after a module is first imported, whoever imports it.

``gutcourse.grading`` adjusts two things in nbgrader (see ``_alembic_head`` and
``_fast_schema``). It used to import nbgrader to do so, which costs about a second;
now the adjustment waits for nbgrader to be imported, by anyone.
"""

from __future__ import annotations

import importlib.util
import sys
import threading


class _Loader:
    """The module's own loader, then the function; the module keeps its own loader."""

    def __init__(self, loader, then) -> None:
        self.loader = loader
        self.then = then

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        self.then()


class _Finder:  # a meta path finder
    def __init__(self, name: str, then) -> None:
        self.name = name
        self.then = then
        self.pending = True
        self.lock = threading.Lock()

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name or not self.pending:
            return None
        with self.lock:
            if not self.pending:
                return None
            self.pending = False  # once; and the search below does not come back here
            spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader, self.then)
        return spec


def after_import(name: str, then) -> None:
    """Call ``then()`` once top-level module ``name`` has been imported (now, if it already is)."""
    if name in sys.modules:
        then()
        return
    sys.meta_path.insert(0, _Finder(name, then))
