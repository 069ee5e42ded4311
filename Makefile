# Petent. `make test` and `make demo` work on a fresh machine: they build .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYBABEL := $(VENV)/bin/pybabel
KEYWORDS := -k _:1,1t -k _:1,2 -k __:1,1t -k __:1,2

.PHONY: install runtime lock audit run demo migrate lint test extract update compile clean

# Installs come from uv.lock only (hashes for every package); uv itself from uv-bootstrap.txt (hashed).
# `make lock` moves the dependencies, on purpose, within pyproject.toml's ranges.
TOOLS ?= .tools
UV := $(TOOLS)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON := $(PYTHON)

$(UV): uv-bootstrap.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --require-hashes --no-deps -r uv-bootstrap.txt
	touch $@

# What runs the bot (make run, make demo): no test tools.
$(VENV)/.runtime: $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --no-dev --inexact --quiet
	touch $@

# Everything `make test` needs on top.
$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --quiet
	touch $@ $(VENV)/.runtime

lock: $(UV)
	$(UV) lock --upgrade

install: $(VENV)/.installed compile
runtime: $(VENV)/.runtime
	$(PYBABEL) compile -d locales -D bot --statistics

## Translations: extract → update → (translate the .po files) → compile
extract: $(VENV)/.installed
	$(PYBABEL) extract -F babel.cfg $(KEYWORDS) --no-default-keywords --add-comments=TRANSLATORS: \
		--sort-by-file --project=petent --copyright-holder="Petent" -o locales/bot.pot .

update: extract
	$(PYBABEL) update -i locales/bot.pot -d locales -D bot --no-fuzzy-matching --ignore-obsolete

compile: $(VENV)/.installed
	$(PYBABEL) compile -d locales -D bot --statistics

run: runtime
	$(PY) -m bot run

## The whole system on this machine, no Telegram needed: http://127.0.0.1:$(SANDBOX_PORT)
SANDBOX_PORT ?= 8080
demo: runtime
	$(PY) -m bot sandbox --port $(SANDBOX_PORT)

migrate: runtime
	$(PY) -m bot migrate

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## Six workers on two cores: end-to-end tests mostly wait for the bot. The ten slowest are listed.
TEST_WORKERS ?= 6
test: install lint audit
	$(PY) -m pytest -n $(TEST_WORKERS) --maxschedchunk=2 --durations=10 $(PYTEST_ARGS)

## Known vulnerabilities in the locked versions. Without a reachable advisory database it says so and passes.
audit: $(VENV)/.installed
	$(PY) tools/audit.py

clean:
	rm -rf $(VENV) $(TOOLS) locales/*/LC_MESSAGES/*.mo .pytest_cache test-output
