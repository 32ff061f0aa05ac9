# Off-the-Shelf: two commands from a fresh clone.
#   make demo   create .venv when missing, install the course, run the main job (offline, a few minutes on a CPU)
#   make test   same set-up, then the whole suite: the lint hooks, unit tests and every notebook under nbval, the instructor
#               notebooks (with the shared data when present) and the student notebooks (exercises unsolved, no data
#               but the embedded demo sets)
# Other targets: make lab (JupyterLab), make student (student notebooks in student/), make slides (reveal.js
# slides in build/slides/, offline), make reproduce, make bench, make lint, make strip; make lint, make test-unit
# and make test-student are the three parts of make test.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# This course's machines install these exact builds from local disk; elsewhere override, e.g. `make demo TORCH_PIN=`
# to let pip choose from pyproject's ranges (or use environment.yml with conda).
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
OUT ?= demo_results
# Extra pytest options: PYTEST_ARGS for the unit tests and instructor notebooks, STUDENT_PYTEST_ARGS for the student
# notebooks (kept apart, so that a `-k` filter meant for the unit tests cannot leave the student run with nothing).
PYTEST_ARGS ?=
# make lab opens the instructor notebooks; LAB_DIR=student opens the student copies (make student first).
LAB_DIR ?= notebooks
STUDENT_PYTEST_ARGS ?=
# make student: where the student notebooks go (beside notebooks/, so their ../docs links work). A notebook changed
# since it was written there (a learner's answers) is kept; FORCE=1 replaces it.
STUDENT_DIR ?= student
FORCE ?=
# make test-student executes fresh student copies here, never in $(STUDENT_DIR), which may hold a learner's work,
# with both data folders pointing at empty ones: the embedded demo sets, as for a learner without downloads.
TEST_STUDENT_DIR := build/test-student
NO_DATA_DIR := build/no-data
# make slides: from the student notebooks by default (no solutions on the projector); SLIDES_SOURCE=notebooks
# makes the answer-key deck; SLIDES_EXECUTE=1 runs the notebooks first so the slides show figures and tables.
SLIDES_DIR := build/slides
SLIDES_SOURCE ?= student
SLIDES_EXECUTE ?=
# The browser files the slides load, from the npm registry at build time (npm checks each package's integrity),
# then served from $(SLIDES_DIR)/vendor: opening the slides needs no network. The notebooks hold no Mermaid
# diagrams, so a two-line template drops nbconvert's Mermaid import from a CDN (its URL is not configurable).
SLIDES_VENDOR := $(SLIDES_DIR)/vendor
SLIDES_TEMPLATE := build/slides-template/offline.html.j2
NPM_PACKAGES := reveal.js@4.6.1 requirejs@2.3.7 jquery@2.2.4 mathjax@2.7.9
# Not needed by the CommonHTML output the slides use: MathJax's unminified copy, other outputs, non-TeX fonts.
VENDOR_EXCLUDE := --exclude=package/unpacked --exclude=package/jax/output/SVG --exclude=package/jax/output/HTML-CSS \
	--exclude='package/fonts/HTML-CSS/[!T]*'
SLIDES_OPTIONS = --template-file $(SLIDES_TEMPLATE) \
	--SlidesExporter.preprocessors=course_utils.slides.HeadingSlides --SlidesExporter.reveal_scroll=True \
	$(if $(SLIDES_EXECUTE),--execute --ExecutePreprocessor.store_widget_state=False) \
	--SlidesExporter.reveal_url_prefix=vendor/reveal.js --SlidesExporter.reveal_theme=white \
	--SlidesExporter.require_js_url=vendor/requirejs/require.js \
	--SlidesExporter.jquery_url=vendor/jquery/dist/jquery.min.js \
	--SlidesExporter.mathjax_url="vendor/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"

.PHONY: setup demo test test-unit test-student student slides lab reproduce bench lint strip clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -n "$(TORCH_PIN)" ]; then $(PY) -m pip install --quiet $(TORCH_PIN); fi
	$(PY) -m pip install --quiet -e ".[dev,scale]"
	@touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m course_utils demo --out $(OUT)

test: lint test-unit test-student

test-unit: setup
	$(PY) -m pytest tests notebooks --nbval-lax -p no:cacheprovider $(PYTEST_ARGS)

test-student: setup
	rm -rf $(TEST_STUDENT_DIR) $(NO_DATA_DIR)
	mkdir -p $(NO_DATA_DIR)/shared $(NO_DATA_DIR)/downloads
	$(PY) -m course_utils student --out $(TEST_STUDENT_DIR)
	COURSE_SHARED_DATA="$(CURDIR)/$(NO_DATA_DIR)/shared" COURSE_DATA_DIR="$(CURDIR)/$(NO_DATA_DIR)/downloads" \
		$(PY) -m pytest $(TEST_STUDENT_DIR) --nbval-lax -p no:cacheprovider $(STUDENT_PYTEST_ARGS)

student: setup
	$(PY) -m course_utils student --out $(STUDENT_DIR) $(if $(FORCE),--force)

$(SLIDES_VENDOR)/.complete:
	@command -v npm >/dev/null || { echo "make slides needs npm (Node.js) once, to fetch reveal.js"; exit 1; }
	rm -rf $(SLIDES_VENDOR) && mkdir -p $(SLIDES_VENDOR)/packs
	cd $(SLIDES_VENDOR)/packs && npm pack --silent $(NPM_PACKAGES) >/dev/null
	@for pack in $(SLIDES_VENDOR)/packs/*.tgz; do \
		name=$$(basename $$pack | sed -E 's/-[0-9][0-9.]*\.tgz$$//'); \
		mkdir -p $(SLIDES_VENDOR)/$$name && tar -xzf $$pack -C $(SLIDES_VENDOR)/$$name --strip-components=1 \
			--no-same-owner --no-same-permissions $(VENDOR_EXCLUDE) || exit 1; \
	done
	rm -rf $(SLIDES_VENDOR)/packs
	@touch $@

$(SLIDES_TEMPLATE):
	mkdir -p $(@D)
	printf '%s\n' "{%- extends 'index.html.j2' -%}" \
		"{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}" > $@

slides: setup $(SLIDES_VENDOR)/.complete $(SLIDES_TEMPLATE)
ifeq ($(SLIDES_SOURCE),notebooks)
	$(VENV)/bin/jupyter nbconvert --to slides notebooks/[0-9][0-9]_*.ipynb --output-dir $(SLIDES_DIR) \
		$(SLIDES_OPTIONS)
else
	$(PY) -m course_utils student --out build/slides-source --force >/dev/null
	$(VENV)/bin/jupyter nbconvert --to slides build/slides-source/[0-9][0-9]_*.ipynb --output-dir $(SLIDES_DIR) \
		$(SLIDES_OPTIONS)
endif
	@echo "Slides: open $(SLIDES_DIR)/00_setup_and_map.slides.html in a browser (no network needed)."

lab: setup
	$(VENV)/bin/jupyter lab $(LAB_DIR)

reproduce: setup
	$(PY) -m course_utils reproduce --profile demo

bench: setup
	$(PY) -m course_utils bench extract --backbone efficientnet_lite0 --images 64
	$(PY) -m course_utils bench svm
	$(PY) -m course_utils bench search

# The pre-commit hooks (ruff; notebooks committed without outputs), over every tracked file, as on a commit.
lint: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/pre-commit run --all-files --show-diff-on-failure

strip: setup
	$(VENV)/bin/nbstripout notebooks/*.ipynb

clean:
	rm -rf $(OUT) .pytest_cache build/test-student build/no-data build/slides build/slides-source build/slides-template
