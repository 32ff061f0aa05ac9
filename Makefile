# Off-the-Shelf: two commands from a fresh clone.
#   make demo   create .venv when missing, install the course, run the main job (offline, a few minutes on a CPU)
#   make test   same set-up, then the whole suite: unit tests and every notebook under nbval
# Other targets: make lab (JupyterLab), make reproduce, make bench, make lint, make strip.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# This course's machines install these exact builds from local disk; elsewhere override, e.g. `make demo TORCH_PIN=`
# to let pip choose from pyproject's ranges (or use environment.yml with conda).
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
OUT ?= demo_results
PYTEST_ARGS ?=

.PHONY: setup demo test lab reproduce bench lint strip clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -n "$(TORCH_PIN)" ]; then $(PY) -m pip install --quiet $(TORCH_PIN); fi
	$(PY) -m pip install --quiet -e ".[dev,faiss]"
	@touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m course_utils demo --out $(OUT)

test: setup
	$(PY) -m pytest tests notebooks --nbval-lax -p no:cacheprovider $(PYTEST_ARGS)

lab: setup
	$(VENV)/bin/jupyter lab notebooks

reproduce: setup
	$(PY) -m course_utils reproduce --profile demo

bench: setup
	$(PY) -m course_utils bench extract --backbone efficientnet_lite0 --images 64
	$(PY) -m course_utils bench svm
	$(PY) -m course_utils bench search

lint: setup
	$(PY) -m ruff check .

strip: setup
	$(VENV)/bin/nbstripout notebooks/*.ipynb

clean:
	rm -rf $(OUT) .pytest_cache
