# Petent. `make test` and `make demo` work on a fresh machine: they build .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYBABEL := $(VENV)/bin/pybabel
KEYWORDS := -k _:1,1t -k _:1,2 -k __:1,1t -k __:1,2

.PHONY: install run demo migrate lint test extract update compile clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed compile

## Translations: extract → update → (translate the .po files) → compile
extract: $(VENV)/.installed
	$(PYBABEL) extract -F babel.cfg $(KEYWORDS) --no-default-keywords --add-comments=TRANSLATORS: \
		--sort-by-file --project=petent --copyright-holder="Petent" -o locales/bot.pot .

update: extract
	$(PYBABEL) update -i locales/bot.pot -d locales -D bot --no-fuzzy-matching --ignore-obsolete

compile: $(VENV)/.installed
	$(PYBABEL) compile -d locales -D bot --statistics

run: install
	$(PY) -m bot run

## The whole system on this machine, no Telegram needed: http://127.0.0.1:$(SANDBOX_PORT)
SANDBOX_PORT ?= 8080
demo: install
	$(PY) -m bot sandbox --port $(SANDBOX_PORT)

migrate: install
	$(PY) -m bot migrate

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## Six workers on two cores: end-to-end tests mostly wait for the bot. The ten slowest are listed.
TEST_WORKERS ?= 6
test: install lint
	$(PY) -m pytest -n $(TEST_WORKERS) --maxschedchunk=2 --durations=10 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) locales/*/LC_MESSAGES/*.mo .pytest_cache test-output
