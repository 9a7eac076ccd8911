"""nbgrader's check of cell metadata, without checking its own schema again for every cell.

nbgrader validates each cell's ``nbgrader`` metadata with ``jsonschema.validate``,
which first checks the schema itself against the JSON Schema meta-schema and builds
a new validator: for a notebook of 70 graded cells that is about a quarter of a
second of a submission's grading spent re-proving the same schema. :func:`install`
gives nbgrader's metadata module a ``validate`` that does the same checks and raises
the same error (jsonschema's best match), but checks each schema and builds its
validator once.
"""

from __future__ import annotations

_KEEP = 16  # validators kept; nbgrader holds one schema per validator object it creates


class _CachedValidate:
    """Stands in for the ``jsonschema`` module inside ``nbgrader.nbgraderformat.common``."""

    def __init__(self, module) -> None:
        self._module = module
        self._validators: dict[int, tuple[dict, object]] = {}

    def validate(self, instance, schema) -> None:
        entry = self._validators.get(id(schema))
        if entry is None or entry[0] is not schema:
            cls = self._module.validators.validator_for(schema)
            cls.check_schema(schema)
            entry = (schema, cls(schema))
            if len(self._validators) >= _KEEP:
                self._validators.pop(next(iter(self._validators)))
            self._validators[id(schema)] = entry
        error = self._module.exceptions.best_match(entry[1].iter_errors(instance))
        if error is not None:
            raise error

    def __getattr__(self, name):
        return getattr(self._module, name)


def install() -> None:
    import nbgrader.nbgraderformat.common as common

    if not isinstance(common.jsonschema, _CachedValidate):
        common.jsonschema = _CachedValidate(common.jsonschema)
