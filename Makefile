# Every target sets up what it needs: a fresh clone can run any of them first.
# The two commands to know: `make demo` and `make test`; `make lab` for learners.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gutcourse-setup
# Jupyter and IPython write their settings here, never into $$HOME.
JUPYTER_HOME := $(CURDIR)/.jupyter
export JUPYTER_DATA_DIR := $(JUPYTER_HOME)/data
export JUPYTER_RUNTIME_DIR := $(JUPYTER_HOME)/runtime
export IPYTHONDIR := $(JUPYTER_HOME)/ipython
export MPLCONFIGDIR := $(JUPYTER_HOME)/matplotlib
# nbgrader's gradebook runs `alembic` as a subprocess: the venv's bin must be on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
LAB_PORT ?= 8888
# Test processes: one more than the cores. Much of the suite waits (kernels starting, servers,
# the browser drawing), so a third process on two cores keeps them busy; on a machine shared
# with other work it also keeps the suite's share of the cores.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 2) + 1 )))

.PHONY: setup lab demo test release clean lock browser sandbox hub hub-env help

help:
	@echo "make demo     the instructor chain on a simulated class in demo-course/ (release, submit, grade, report)"
	@echo "make test     the whole test suite (installs what it needs)"
	@echo "make lab      a learner workspace in JupyterLab on 127.0.0.1:$(LAB_PORT)"
	@echo "make hub      (as root) the course on a multi-user JupyterHub on 127.0.0.1:$(HUB_PORT), with trial logins"
	@echo "make release  generate the student versions of every assignment"
	@echo "make setup    create .venv and install the pinned environment (idempotent)"
	@echo "make lock     refresh constraints.txt from the newest allowed versions"
	@echo "make clean    remove the venv, caches, test artifacts and the demo course (never coursework/ or workspace/)"

setup: $(STAMP)
	@mkdir -p $(JUPYTER_DATA_DIR) $(JUPYTER_RUNTIME_DIR) $(IPYTHONDIR) $(MPLCONFIGDIR)

# Reinstall only when the dependencies or their pins change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -c constraints.txt -e '.[test]'
	@# pip compiles the packages' bytecode in one process; compileall uses every core (on two, this step
	@# and the install took 57 s against pip's 65 s). Kernels run as other users and cannot write it later.
	@# A file that does not compile (a template, an old test) is skipped, as pip skips it.
	-@$(PY) -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1
	@touch $(STAMP)

release: setup
	JUPYTER_CONFIG_DIR=$(JUPYTER_HOME)/instructor $(VENV)/bin/gutcourse release

demo: setup
	JUPYTER_CONFIG_DIR=$(JUPYTER_HOME)/instructor $(VENV)/bin/gutcourse demo

# JupyterLab refuses to run as root unless told to; a learner's own machine is rarely root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: release
	$(VENV)/bin/gutcourse workspace workspace --jupyter-config $(JUPYTER_HOME)/learner
	cd workspace && JUPYTER_CONFIG_DIR=$(JUPYTER_HOME)/learner $(CURDIR)/$(VENV)/bin/jupyter lab $(ALLOW_ROOT) \
	  --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) --ServerApp.root_dir=$(CURDIR)/workspace

# Debian's chromium for the browser tests; installed when we are root and it is missing.
browser:
	@if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "could not install chromium: browser tests will skip"; \
	else echo "chromium not found and not root: browser tests will skip"; fi

# bubblewrap isolates grading kernels when grading as an ordinary user (docs/security.md);
# as root the sandbox needs nothing extra, but the tests also exercise the bubblewrap path.
sandbox:
	@if command -v bwrap >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's bubblewrap for the grading sandbox"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
	    || echo "could not install bubblewrap: grading as an ordinary user will use limits only"; \
	else echo "bubblewrap not found: grading as an ordinary user uses limits only (docs/security.md)"; fi

# The multi-user hub (deploy/hub/): as root, the students' venv and JupyterHub's proxy for the hub test.
hub-env: setup
	@if [ "$$(id -u)" = 0 ]; then $(PY) deploy/hub/hubctl.py env; \
	else echo "not root: the JupyterHub test will skip (it creates Unix users)"; fi

# JupyterHub with the course on 127.0.0.1:$(HUB_PORT), as root (docs/deployment.md); Ctrl-C stops it.
HUB_PORT ?= 8000
hub: setup
	$(PY) deploy/hub/hubctl.py setup
	GUTCOURSE_HUB_PORT=$(HUB_PORT) $(PY) deploy/hub/hubctl.py run

test: setup browser sandbox hub-env
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15

lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	.lock-venv/bin/pip freeze --all --exclude-editable | grep -v '^gutcourse\|^pip==' > constraints.txt
	rm -rf .lock-venv
	@echo "constraints.txt refreshed: run make test, then commit it"

# Nothing under coursework/ is removed: in a real term it holds students' submissions,
# grades and the gradebook. Nor is workspace/, a learner's own work.
clean:
	rm -rf demo-course artifacts .pytest_cache .jupyter $(VENV) deploy/hub/node_modules
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
