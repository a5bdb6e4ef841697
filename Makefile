# Two commands do everything on a fresh machine (Python 3.11, pip, Node/npm, make):
#   make run   - set up, build the Mini App (when npm exists), migrate, serve http://127.0.0.1:8000
#   make test  - set up with dev dependencies and run the whole suite (what CI runs)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WEBAPP_STAMP := webapp/dist/.built
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test chat webapp clean

install: $(STAMP)

# Re-installs only when the dependency lists change, so `make run` and `make test` stay quick.
$(STAMP): pyproject.toml requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

webapp:
	@if [ ! -f webapp/package.json ]; then \
		echo "webapp: no package.json yet, skipping the Mini App build"; \
	elif command -v npm >/dev/null 2>&1; then \
		if [ ! -f $(WEBAPP_STAMP) ] || [ -n "$$(find webapp -path webapp/node_modules -prune -o -path webapp/dist -prune -o -type f -newer $(WEBAPP_STAMP) -print -quit)" ]; then \
			(cd webapp && npm install --no-audit --no-fund && npm run build) && touch $(WEBAPP_STAMP); \
		fi; \
	else \
		echo "webapp: npm not found, /app will show a 'build required' page"; \
	fi

run: install webapp
	HOST=$(HOST) PORT=$(PORT) $(PY) -m adapters.main serve

# The frontend unit tests (vitest) first, then pytest (its browser tests need the build from `webapp`).
test: install webapp
	@if [ -d webapp/node_modules ]; then (cd webapp && npm test); else echo "webapp: npm not found, vitest skipped"; fi
	$(PY) -m pytest -q

chat: install
	$(PY) -m adapters.chat

clean:
	rm -rf $(VENV) webapp/node_modules webapp/dist .pytest_cache
