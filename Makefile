# Styrkort. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/styrkort
PYTEST_ARGS ?= -n 2 --dist worksteal  # CI has two cores; long tests spread as workers free up

.PHONY: demo serve install install-dev system-deps test test-sqlite test-postgres lint format typecheck bench messages check vendor clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV) || (apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV))
	$(PY) -m pip install -q --upgrade pip

# Runtime libraries WeasyPrint needs (PDF reports); installed only when missing and apt is there.
system-deps:
	@if ! ldconfig -p | grep -q libpango-1.0; then \
	  if command -v apt-get >/dev/null; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core; \
	  else echo "Install Pango (libpango-1.0) for PDF reports"; fi; fi

install: $(VENV)/bin/activate system-deps
	$(PY) -m pip install -q -e .

install-dev: $(VENV)/bin/activate system-deps
	$(PY) -m pip install -q -e '.[dev]'
	@if [ ! -x /usr/bin/chromium ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi

demo: install
	$(VENV)/bin/styrkort demo

serve: install
	$(VENV)/bin/styrkort serve

test: install-dev
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite:
	$(PY) -m pytest -p no:cacheprovider -q $(PYTEST_ARGS)

# Runs again on PostgreSQL when a server answers at 127.0.0.1:5432 (it does on the dev machines
# and in CI); pytest-django creates and drops its own test database there.
test-postgres:
	@if $(PY) -c "import psycopg; psycopg.connect('host=127.0.0.1 port=5432 user=postgres dbname=postgres', connect_timeout=3).close()" 2>/dev/null; then \
	  STYRKORT_DATABASE_URL=$(PG_URL) $(PY) -m pytest -p no:cacheprovider -q --database-tests-only $(PYTEST_ARGS); \
	else echo "PostgreSQL does not answer at 127.0.0.1:5432: PostgreSQL run skipped"; fi

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy styrkort
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

format:
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck:
	$(VENV)/bin/mypy styrkort

messages:
	cd styrkort && ../$(PY) ../manage.py makemessages -l sv --no-obsolete --no-location
	cd styrkort && ../$(PY) ../manage.py compilemessages -l sv

# With a PostgreSQL server at 127.0.0.1:5432, the engine's stored steps run on it too.
BENCH_PG_URL ?= postgres://postgres@127.0.0.1:5432/styrkort_bench

bench: install-dev
	@if $(PY) -c "import psycopg; psycopg.connect('host=127.0.0.1 port=5432 user=postgres dbname=postgres', connect_timeout=3).close()" 2>/dev/null; then \
	  $(PY) bench/run.py --postgres $(BENCH_PG_URL); \
	else $(PY) bench/run.py; fi

clean:
	rm -rf var build *.egg-info
