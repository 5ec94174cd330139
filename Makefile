# Two entry commands that work on a fresh machine with nothing but Python:
#   make test   create .venv if missing, install fercleaner + dev extras, run the test suite
#   make demo   same install, then generate synthetic faces, score them and print the results
# CI (.ci/run) also runs `make lint` and `make wheel-smoke`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo-output
LINTED := fercleaner app recipes tests bench setup.py .ci/link_wheel_deps.py

.PHONY: install test demo lint format wheel-smoke clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/python -m pytest -q

# demo: 2,000 synthetic faces with 20% planted label errors -> score -> check the flags.
demo: install
	$(BIN)/fercleaner synth $(DEMO)/faces --n 2000 --noise 0.2 --layout imagefolder --seed 0
	rm -rf $(DEMO)/run
	$(BIN)/fercleaner score $(DEMO)/faces --out $(DEMO)/run --recipe quick
	$(BIN)/python -m fercleaner.demo $(DEMO)/run $(DEMO)/faces.truth.parquet

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

format: install
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

# wheel-smoke: build the wheel, install it (not -e) into a fresh venv, synth + score + export
# from outside the checkout (under a minute; the dependencies are linked from .venv).
wheel-smoke: install
	.ci/wheel-smoke

clean:
	rm -rf $(DEMO) .pytest_cache
