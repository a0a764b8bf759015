# make demo   - the main job: hand detection with the shipped model (creates .venv on first use)
#               make demo SOURCE=video.mp4 (or a camera index, or an image folder)
# make test   - lint + the test suite (what CI runs)
# make wheel  - the runtime package (dist/handspot-*.whl: no TensorFlow, the models inside)
# make bench  - the benchmarks' tables
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean webdeps wheel
NODE_STAMP := webexport/node_modules/.installed

# The workflow's pinned stack, and the runtime package from this checkout (editable: hands-detect)
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(NODE_STAMP): webexport/package.json webexport/package-lock.json
	cd webexport && npm ci --no-audit --no-fund
	touch $@

webdeps: $(NODE_STAMP)

demo: $(STAMP)
	$(BIN)/python -m detect.demo $(if $(SOURCE),--source $(SOURCE),)

prep-demo: $(STAMP)
	$(BIN)/python -m prep.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two workers by default (make test TEST_WORKERS=0 for one process); pytest exits 5 when it
# collects no test, which is not a failure of the suite.
TEST_WORKERS ?= 2
test: lint $(NODE_STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup || [ $$? -eq 5 ]

bench: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m prep.bench
	$(BIN)/python -m pipelines.bench
	$(BIN)/python -m pipelines.bench --replicas
	$(BIN)/python -m detect.bench
	$(BIN)/python -m detect.sizes
	$(BIN)/python -m detect.bench --codecs
	$(BIN)/python -m detect.hands_bench
	$(BIN)/python -m detect.masks_bench
	$(BIN)/python -m detect.batch_bench
	$(BIN)/python -m detect.tasks_bench
	if command -v valgrind >/dev/null; then $(BIN)/python -m detect.avx2_count; fi
	$(BIN)/python -m webexport.bench

wheel: $(STAMP)
	$(BIN)/pip wheel --quiet --no-deps -w dist .
	@ls dist/handspot-*.whl

clean:
	rm -rf $(VENV) data/demo data/fixture-egohands dist build
