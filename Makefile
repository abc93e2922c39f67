# Two commands for a new machine: `make run` and `make test`.
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
DEMO_DATA := data/demo

.PHONY: run test system-deps venv dev-venv demo lint bench screenshots clean

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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
