# citystack: `make run` sets everything up and serves; `make test` sets up and runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= data/citystack.duckdb
VENDOR := citystack/static/vendor

.PHONY: run test bench bench-streams bench-scale setup venv vendor sample chromium postgis clean

run: setup sample
	$(BIN)/citystack serve --db $(DB)

setup: venv vendor

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

vendor: $(VENDOR)/.installed

$(VENDOR)/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)/leaflet $(VENDOR)/d3 $(VENDOR)/apache-arrow
	cp -r node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css node_modules/leaflet/dist/images $(VENDOR)/leaflet/
	cp node_modules/d3/dist/d3.min.js $(VENDOR)/d3/
	cp node_modules/apache-arrow/Arrow.es2015.min.js node_modules/apache-arrow/LICENSE.txt node_modules/apache-arrow/NOTICE.txt $(VENDOR)/apache-arrow/
	touch $@

sample: venv
	test -f $(DB) || $(BIN)/citystack init --sample --db $(DB)

chromium:
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

postgis:
	test -d /usr/share/postgresql/15/extension -a -f /usr/share/postgresql/15/extension/postgis.control || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 postgresql-15-postgis-3 >/dev/null)

test: setup chromium postgis
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/run.py
	$(BIN)/python bench/streams.py

bench-streams: setup
	$(BIN)/python bench/streams.py

# Arrow and density figures beside datashader (in its own env under bench/out/peers): bench/SCALE.md.
bench-scale: setup
	test -x bench/out/peers/datashader/bin/python || (python3 -m venv bench/out/peers/datashader && \
	  bench/out/peers/datashader/bin/pip install --quiet -r bench/peers/datashader.txt) || true
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) node_modules $(VENDOR) build *.egg-info
