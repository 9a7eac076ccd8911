"""Text that must never reach a learner or a grading kernel: solutions, hidden tests, planted settings.

Used by the learner-wheel test (installed files) and the kernel-view test (every file a
grading kernel can read).
"""

import ast
import re
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "coursework" / "source"


def _between(source: str, begin: str, end: str) -> list[str]:
    return [block for block in re.findall(re.escape(begin) + r"(.*?)" + re.escape(end), source, re.S)]


# Lines that solutions or hidden tests share with any numerical code; each gives nothing away.
GENERIC_LINES = {
    "except (TypeError, ValueError):",
    "rng = np.random.default_rng(seed)",
    "totals = counts.sum(axis=1)",
    "counts = np.asarray(counts, dtype=float)",
    'with np.errstate(divide="ignore", invalid="ignore"):',
    "with warnings.catch_warnings():",
}
# The generator's seed is public provenance (datasets/README.md); without the generator it decides nothing.
PUBLIC_SETTINGS = {"MASTER_SEED"}


def needles() -> dict[str, str]:
    """Text that must never reach a learner: line -> where it comes from.

    Runs of spaces and tabs are written as one space: compare with text treated the same way.
    """
    needles = {}
    for path in sorted(SOURCE.glob("*/*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            blocks = [("solution", b) for b in _between(cell.source, "### BEGIN SOLUTION", "### END SOLUTION")]
            blocks += [("hidden test", b) for b in _between(cell.source, "### BEGIN HIDDEN TESTS",
                                                            "### END HIDDEN TESTS")]
            for kind, block in blocks:
                for line in block.splitlines():
                    line = line.strip()
                    if len(line) >= 25 and not line.startswith("#") and line not in GENERIC_LINES:
                        needles[re.sub(r"[ \t]+", " ", line)] = f"{kind} in {path.name}"
    # The generator's settings, planted effects among them: every module-level constant.
    for path in sorted((REPO / "src" / "gutcourse" / "simulate").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.lstrip("_").isupper()
                                                    for t in node.targets):
                names = [t.id for t in node.targets]
                if names == ["DICTIONARY_FIELDS"] or set(names) & PUBLIC_SETTINGS:
                    continue  # the data dictionary's column names; the documented seed
                for name in names:
                    needles[re.sub(r"[ \t]+", " ", ast.get_source_segment(source, node))] = f"{name} in {path.name}"
                    if "_" in name.strip("_"):  # IBD_COATED, not a plain word like PROTOCOLS
                        needles[name] = f"{name} in {path.name}"
    return needles
