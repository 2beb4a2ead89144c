# Two entry points, both self-installing on a fresh machine (python3 with venv, openssl, kubectl):
#   make example   check the manifests in examples/ (no cluster needed)
#   make test      run the test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: example test bench clean browser dns

$(VENV)/.ready: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

example: $(VENV)/.ready
	$(BIN)/kubectl-gwdup check -f examples/ -o wide; status=$$?; [ $$status -eq 0 ] || [ $$status -eq 3 ]

# the browser tests need Debian's chromium and certutil (libnss3-tools)
browser:
	@command -v chromium >/dev/null && command -v certutil >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium libnss3-tools; }

# the DNS tests run Debian's dnsmasq (the binary alone: dnsmasq-base) on loopback
dns:
	@command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq dnsmasq-base; }

test: $(VENV)/.ready browser dns
	$(BIN)/python -m pytest -q

bench: $(VENV)/.ready dns
	$(BIN)/python -m pip install -q cryptography
	$(BIN)/python benchmarks/analysis_scale.py
	$(BIN)/python benchmarks/merge_scale.py
	$(BIN)/python benchmarks/apply421_scale.py
	$(BIN)/python benchmarks/gatewayapi_scale.py
	$(BIN)/python benchmarks/impact_logs.py
	$(BIN)/python benchmarks/check_files.py
	$(BIN)/python benchmarks/cluster_requests.py
	$(BIN)/python benchmarks/envoy_421.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/serve_watch.py
	$(BIN)/python benchmarks/dns_resolve.py
	$(BIN)/python benchmarks/fleet.py

clean:
	rm -rf $(VENV) build dist *.egg-info
