# Two commands for a new machine: `make run` and `make test`.
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
DEMO_DATA := data/demo

.PHONY: run test system-deps venv dev-venv demo lint bench screenshots gpu-wheels gpu-figures-smoke clean

$(BIN)/.installed: requirements.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.dev-installed: $(BIN)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

dev-venv: $(BIN)/.dev-installed

demo: venv
	@test -f $(DEMO_DATA)/manifest.json || $(BIN)/python -m backend generate --out $(DEMO_DATA) \
		--train-per-class 40 --test-per-class 20 --seed 0 --style mixed

run: demo
	$(BIN)/python -m streamlit run dashboard/Home.py

# chromium (browser test) and postgresql (real-server tests): installed when root with apt-get,
# otherwise make stops here with the one command to run.
system-deps:
	.ci/system-deps.sh

# Two pytest-xdist workers, whole files each (fixtures such as the Ray head and the PostgreSQL
# cluster are per worker), longest files first (tests/fixtures/ordering.py), one torch thread each (tests/conftest.py):
# 5-11 minutes on 2 cores, depending on the host's other load (docs/TESTS.md).
test: system-deps dev-venv
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

screenshots: system-deps dev-venv
	$(BIN)/python bench/screenshots.py --out docs/screenshots

lint: dev-venv
	$(BIN)/ruff check backend dashboard pages tests bench

bench: venv
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/predict_latency.py
	$(BIN)/python bench/dashboard_render.py

# For bench/gpu_figures.sh on the lent GPU machine (docs/BENCHMARKS.md, "GPU figures"): the cp312
# wheels of what its image lacks (SQLAlchemy, Alembic, albumentations, pebble and their pure
# dependencies) go to .whl/, which the device tool's run carries; what the image already has
# (numpy, scipy, opencv, PyYAML, MarkupSafe) is dropped so its own builds stay in use.
GPU_WHEELS := sqlalchemy==2.1.9 alembic==1.20.1 albumentations==2.0.8 pebble==5.2.3
gpu-wheels: venv
	rm -rf .whl && mkdir .whl
	$(BIN)/pip download --quiet --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		--platform any -d .whl $(GPU_WHEELS)
	rm -f .whl/numpy-* .whl/scipy-* .whl/opencv* .whl/PyYAML-* .whl/pyyaml-* .whl/MarkupSafe-* .whl/markupsafe-*
	ls .whl

# bench/gpu_figures.sh with every step shrunk, on this CPU: checks the script's wiring before device time.
gpu-figures-smoke: venv
	GPU_FIGURES_SMOKE=1 PYTHON=$(BIN)/python OUT=$(CURDIR)/gpu-figures-smoke bash bench/gpu_figures.sh
	cat gpu-figures-smoke/figures.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
