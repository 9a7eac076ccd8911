"""Helpers shared by the widget tests: find a control inside a built explorer."""

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def walk(widget):
    """The widget and every widget nested in it."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)


def find(widget, description: str):
    """The one control of ``widget`` with this description (fails if none or several)."""
    matches = [w for w in walk(widget) if getattr(w, "description", None) == description]
    assert len(matches) == 1, f"expected one control described {description!r}, found {len(matches)}"
    return matches[0]
