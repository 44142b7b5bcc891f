# The two commands of the README: `make up` runs the federation on this machine, `make test` runs the tests.
# Both create .venv and install the pinned dependencies (requirements.lock) first, when needed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TOOLS_STAMP := $(VENV)/.test-tools-stamp

.PHONY: install up test test-kafka lint lock bench clean kafka

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

# Debian tools some tests use: promtool (alert-rule tests), headless Chromium and CJK fonts (public page tests and
# their screenshots), PostgreSQL's server binaries (a throwaway server for the postgres tests), Java and Maven
# (Apache Kafka, the second engine the integration tests run on). Installed when missing and apt-get can be used
# (root, as on CI); otherwise those tests are skipped and say why.
$(TOOLS_STAMP): | $(STAMP)
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing test tools:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	      || echo "warning: could not install$$missing; the tests that need them will be skipped"; \
	  else echo "note:$$missing not installed; the tests that need them will be skipped"; fi; \
	fi
	@touch $@

install: $(STAMP)

# Apache Kafka's jars (deploy/kafka/pom.xml) into deploy/kafka/lib/, git-ignored: the engine of `--engine kafka`.
KAFKA_STAMP := deploy/kafka/lib/.resolved
$(KAFKA_STAMP): deploy/kafka/pom.xml | $(STAMP)
	$(PY) -c 'from sgs.kafka.kraft import resolve_jars; resolve_jars()'
	@touch $@

kafka: $(KAFKA_STAMP)

up: $(STAMP)
	$(VENV)/bin/sgs up

# The README's test command: the lint (ruff, mypy, the import contracts), everything on the embedded Tansu, then
# the integration tests again on Apache Kafka when Java and Maven are here (installed by $(TOOLS_STAMP) as root).
test: lint $(TOOLS_STAMP)
	$(PY) -m pytest
	@if command -v java >/dev/null && command -v mvn >/dev/null; then $(MAKE) --no-print-directory test-kafka; \
	else echo "skipped: the integration tests on Apache Kafka need Java and Maven (apt-get install openjdk-17-jre-headless maven, as root)"; fi

# The integration tests on a 3-node Apache Kafka cluster with mutual TLS and ACLs, started once for the run
# (tests/conftest.py); tests that use no broker ran in the Tansu run and are skipped.
test-kafka: $(STAMP) $(TOOLS_STAMP) $(KAFKA_STAMP)
	SGS_ENGINE=kafka $(PY) -m pytest tests/integration

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy sgs services simulators
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(VENV)/bin/sgs bench --out var/bench

# Re-pin every dependency to what is installed now (after changing pyproject.toml).
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable > requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache
