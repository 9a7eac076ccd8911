"""Test-wide setup: keep Jupyter, IPython and matplotlib away from $HOME.

The environment variables are set when pytest imports this file, before any
test starts a kernel, so every kernel and nbgrader call inherits them.
"""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

_isolated = Path(tempfile.mkdtemp(prefix="gutcourse-tests-"))
atexit.register(shutil.rmtree, _isolated, ignore_errors=True)
for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                 ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                 ("MPLCONFIGDIR", "matplotlib"), ("XDG_CACHE_HOME", "cache")):
    os.environ[var] = str(_isolated / sub)
os.environ["MPLBACKEND"] = "Agg"
os.environ["PYTHONHASHSEED"] = "0"
# One thread per numerical library: on 2 cores shared by test workers and kernels,
# OpenMP/BLAS threads spin against each other (a 0.06 s PERMANOVA took 8 s).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
# nbgrader's gradebook runs `alembic` as a subprocess: the venv's bin must be on PATH.
_bin = str(Path(sys.executable).parent)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")

REPO = Path(__file__).resolve().parents[1]
