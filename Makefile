# The two commands a fresh machine needs: `make up` (run the whole system) and `make test`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: up test status bench stress lint schemas clean compose-test compose-up compose-down

$(STAMP): pyproject.toml requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	# opa-golib-python-bindings declares Python >= 3.14 but loads on 3.11 (docs/decisions/0012).
	$(VENV)/bin/pip install -q --ignore-requires-python -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $(STAMP)

up: $(STAMP)
	$(VENV)/bin/emaflyt up

# Two workers (pytest-xdist), each taking whole files, so a module's shared system stays in
# one process: 8.8 min here instead of 13.6 min in one process. TEST_WORKERS=0 runs in one.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

status: $(STAMP)
	$(VENV)/bin/emaflyt status

bench: $(STAMP)
	$(VENV)/bin/python bench/run_all.py

# The fault tests with 10,000 mixed messages (the suite runs them with fewer).
stress: $(STAMP)
	EMA_FAULT_MESSAGES=10000 $(VENV)/bin/python -m pytest -q tests/e2e/test_faults.py

# The compose stack on podman (deploy/containers/up-local.sh): build, start, run tests/containers,
# remove it with its volumes. Beside `make up`: its own project name and free host ports.
compose-test: $(STAMP)
	deploy/containers/up-local.sh test

compose-up: $(STAMP)
	deploy/containers/up-local.sh up

compose-down:
	deploy/containers/up-local.sh down

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

schemas: $(STAMP)
	$(VENV)/bin/python -m contracts.generate

clean:
	rm -rf $(VENV) .pytest_cache
