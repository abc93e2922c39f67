# Two commands for a new machine: `make run` and `make test`.
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
DEMO_DATA := data/demo

.PHONY: run test system-deps venv dev-venv demo lint bench screenshots gpu-wheels gpu-figures-smoke torch-floor device-mimic clean

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
# SMOKE_PYTHON=.venv-torch-floor/bin/python (after `make torch-floor`) runs it on the device's torch 2.11.
SMOKE_PYTHON ?= $(BIN)/python
gpu-figures-smoke: venv
	GPU_FIGURES_SMOKE=1 PYTHON=$(SMOKE_PYTHON) OUT=$(CURDIR)/gpu-figures-smoke bash bench/gpu_figures.sh
	cat gpu-figures-smoke/figures.md

# The torch files of the suite on the oldest torch the code must run on: the GPU machine's image has
# torch 2.11 / torchvision 0.26, which this disk's mirror lacks, so they come from PyPI as CUDA builds
# (about 3 GB into .venv-torch-floor, a few minutes) and run on this CPU. Not part of `make test`.
FLOOR_VENV  := .venv-torch-floor
FLOOR_TORCH := torch==2.11.0 torchvision==0.26.0
FLOOR_TESTS := tests/test_models.py tests/test_training.py tests/test_checkpoint.py tests/test_export.py \
	tests/test_explain.py tests/test_predict.py tests/test_predict_cli.py tests/test_series_model.py \
	tests/test_calibration.py tests/test_ood.py tests/test_uncertainty.py tests/test_train_cli.py \
	tests/test_losses.py tests/test_cache.py tests/test_transforms.py tests/test_generalization.py \
	tests/test_compare.py tests/test_predict_hostile.py
$(FLOOR_VENV)/.installed: requirements.txt requirements-dev.txt
	$(PY) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/pip install --quiet --upgrade pip
	$(FLOOR_VENV)/bin/pip install --quiet $(FLOOR_TORCH)
	grep -Ev '^(torch|torchvision)==' requirements.txt > $(FLOOR_VENV)/requirements.txt
	grep -v '^-r' requirements-dev.txt > $(FLOOR_VENV)/requirements-dev.txt
	$(FLOOR_VENV)/bin/pip install --quiet -r $(FLOOR_VENV)/requirements.txt -r $(FLOOR_VENV)/requirements-dev.txt
	touch $@

torch-floor: $(FLOOR_VENV)/.installed
	$(FLOOR_VENV)/bin/python -c 'import torch, torchvision; print("torch", torch.__version__, "| torchvision", torchvision.__version__)'
	$(FLOOR_VENV)/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder $(FLOOR_TESTS)

# The device machine as near as this CPU can play it: its Python 3.12, torch 2.11 / torchvision 0.26
# and only the packages its image holds (KINDS.md's list; no SQLAlchemy, Alembic, albumentations or
# pebble), then the shrunk bench/gpu_figures.sh with the carried .whl wheels installed into a fresh
# folder, as on the device. Catches a missing wheel, a cp312 wheel that will not install, or code
# that fails on 3.12 before any device time is spent. DEVICE_PY names the interpreter (pyenv's 3.12
# is found where present). Downloads about 3 GB into .venv-device; not part of `make test`.
DEVICE_PY   ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.12)
DEVICE_VENV := .venv-device
DEVICE_PKGS := $(FLOOR_TORCH) numpy pandas scikit-learn matplotlib pillow opencv-python-headless onnx \
	onnxruntime psutil tqdm pyyaml
$(DEVICE_VENV)/.installed:
	@$(DEVICE_PY) -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version' 2>/dev/null || \
		{ echo "device-mimic needs Python 3.12 (the device's); install one (pyenv install 3.12) and pass DEVICE_PY=/path/to/python3.12"; exit 1; }
	$(DEVICE_PY) -m venv $(DEVICE_VENV)
	$(DEVICE_VENV)/bin/pip install --quiet --upgrade pip
	$(DEVICE_VENV)/bin/pip install --quiet $(DEVICE_PKGS)
	touch $@

device-mimic: $(DEVICE_VENV)/.installed gpu-wheels
	@! $(DEVICE_VENV)/bin/python -c 'import sqlalchemy' 2>/dev/null || { echo "$(DEVICE_VENV) holds sqlalchemy: not the device image"; exit 1; }
	$(MAKE) gpu-figures-smoke SMOKE_PYTHON=$(DEVICE_VENV)/bin/python

clean:
	rm -rf $(VENV) $(FLOOR_VENV) $(DEVICE_VENV) .pytest_cache .ruff_cache
