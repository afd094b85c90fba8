# mepd: `make run` and `make test` work from a fresh clone on Debian 12 / Ubuntu.
# As root, missing Debian packages are installed with apt-get; otherwise the exact
# apt-get line is printed and make stops.

PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11 /usr/bin/python3))
VENV := .venv
STAMP := $(VENV)/.installed

# Build dependencies of the Python bindings (rrdtool, systemd-python) and of mepd's own C extension, the tools
# mepd drives, and the real peers the tests talk to.
APT_BUILD := python3-venv python3-dev gcc pkg-config librrd-dev libsystemd-dev libsqlite3-dev
APT_RUN := rrdtool rrdcached
APT_TEST := bsdutils util-linux openssl rsyslog rsyslog-relp logrotate snmpd snmp mosquitto mosquitto-clients \
	systemd-journal-remote sqlite3 goaccess chromium nginx-light nats-server dbus-daemon prometheus victoria-metrics
# Building and checking the .deb (make deb, tests/integration/deploy).
APT_DEB := dpkg-dev binutils lintian man-db
# Booting a Debian 12 with the .deb installed (tests/system): its root file
# system is built from Debian's packages and cached in var/system; socat and
# ssh for Ansible over SSH into it; podman (with runc) builds and runs the image.
APT_SYSTEM := mmdebstrap systemd-container socat openssh-client iproute2 podman runc
APT_PACKAGES := $(APT_BUILD) $(APT_RUN) $(APT_TEST) $(APT_DEB) $(APT_SYSTEM)

.PHONY: run test lint typecheck pytest bench deb system-packages venv clean

run: $(STAMP)
	mkdir -p var
	$(VENV)/bin/mepd --config conf/dev.toml

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy mepd/

# The C extensions (the syslog speedups, the packed rows) must have been built by the install: their tests fail
# instead of skipping.
pytest: $(STAMP)
	MEPD_REQUIRE_SPEEDUPS=1 $(VENV)/bin/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	@for script in bench/*/run.sh; do echo "== $$script"; sh "$$script" || exit 1; done

venv: $(STAMP)

deb: system-packages
	sh packaging/deb/build.sh dist

$(STAMP): setup.cfg setup.py pyproject.toml mepd/sources/syslog/_speedups.c mepd/store/logs/_rows.c | system-packages
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip setuptools wheel
	$(VENV)/bin/pip install --quiet --editable '.[test,deploy]'
	touch $@

system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	missing=$$(echo $$missing); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing: $$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing \
	    || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }; \
	  else \
	    echo "mepd needs these Debian packages; run:"; \
	    echo "  sudo apt-get install -y --no-install-recommends $$missing"; \
	    exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) var build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
