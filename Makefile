# podman-sd — set-up, tests, demo and installation.
#
#   make test      install what is missing, lint, type-check, run every test
#   make demo      boot a test host and run a pod in it, logs included
#   make install   install into PREFIX (default /usr/local); needs no network
#   make uninstall

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
LIBDIR = $(PREFIX)/lib/podman-sd
UNITDIR = $(PREFIX)/lib/systemd/system
SYSUSERSDIR = $(PREFIX)/lib/sysusers.d
MANDIR = $(PREFIX)/share/man/man1
GENERATORDIR = $(PREFIX)/lib/systemd/system-generators
SYSCONFDIR ?= /etc
PYTHON_SYSTEM = /usr/bin/python3
# The system Python's package folders, as a Python list body for the entry points.
SITEDIRS = $(shell $(PYTHON_SYSTEM) -c 'import site; print(", ".join(repr(p) for p in site.getsitepackages()))')
VENV = .venv
PY = $(VENV)/bin/python

# Distribution packages: the runtime's libraries, and the real parts the
# tests and benchmarks use (systemd, the registry, umoci, skopeo, busybox,
# podman; runc for podman with cgroups, which crun cannot do on these machines).
APT_PACKAGES = python3 python3-venv python3-gi python3-pydbus python3-yaml \
	python3-cryptography python3-requests python3-systemd python3-zstandard \
	systemd dbus util-linux iproute2 make \
	umoci skopeo busybox-static docker-registry podman crun runc gnupg zstd python3-jwt

.PHONY: deps venv lint test unit-test demo install uninstall clean

deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

$(VENV)/.stamp: requirements-dev.txt
	$(PYTHON_SYSTEM) -m venv --system-site-packages $(VENV)
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

venv: deps $(VENV)/.stamp

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Every test: unit tests and the system tests that boot a real systemd.
test: lint
	mkdir -p build
	$(PY) -m pytest --basetemp=$(CURDIR)/build/pytest $(PYTEST_ARGS)

unit-test: venv
	mkdir -p build
	$(PY) -m pytest --basetemp=$(CURDIR)/build/pytest tests/unit $(PYTEST_ARGS)

demo: venv
	$(PY) -m tests.testhost.demo

install:
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(GENERATORDIR)
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/podman-sd/pods
	rm -rf $(DESTDIR)$(LIBDIR)/podman_sd
	cp -r podman_sd $(DESTDIR)$(LIBDIR)/
	find $(DESTDIR)$(LIBDIR) -name __pycache__ -prune -exec rm -rf {} +
	$(PYTHON_SYSTEM) -m compileall -q $(DESTDIR)$(LIBDIR)/podman_sd
	for tool in podman-sd:podman_sd.entry podman-sd-fetch:podman_sd.fetch.main; do \
		name=$${tool%%:*}; module=$${tool#*:}; \
		sed -e 's|@LIBDIR@|$(LIBDIR)|' -e "s|@MODULE@|$$module|" -e "s|@SITEDIRS@|$(SITEDIRS)|" packaging/entrypoint.in \
			> $(DESTDIR)$(BINDIR)/$$name; \
		chmod 0755 $(DESTDIR)$(BINDIR)/$$name; \
	done
	sed -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@MODULE@|podman_sd.generator|' -e "s|@SITEDIRS@|$(SITEDIRS)|" packaging/entrypoint.in \
		> $(DESTDIR)$(GENERATORDIR)/podman-sd-generator
	chmod 0755 $(DESTDIR)$(GENERATORDIR)/podman-sd-generator
	sed -e 's|@BINDIR@|$(BINDIR)|g' units/pod@.service.in > $(DESTDIR)$(UNITDIR)/pod@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/pod@.service
	install -d $(DESTDIR)$(MANDIR) $(DESTDIR)$(SYSUSERSDIR)
	install -m 0644 man/podman-sd.1 $(DESTDIR)$(MANDIR)/podman-sd.1
	install -m 0644 packaging/podman-sd.sysusers $(DESTDIR)$(SYSUSERSDIR)/podman-sd.conf
	[ -n "$(DESTDIR)" ] || systemd-sysusers $(SYSUSERSDIR)/podman-sd.conf
	# The shipped trust policy rejects every image not explicitly trusted;
	# an administrator's policy is never overwritten.
	[ -e $(DESTDIR)$(SYSCONFDIR)/podman-sd/policy.json ] || \
		install -m 0644 packaging/policy.json $(DESTDIR)$(SYSCONFDIR)/podman-sd/policy.json

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/podman-sd $(DESTDIR)$(BINDIR)/podman-sd-fetch
	rm -f $(DESTDIR)$(GENERATORDIR)/podman-sd-generator $(DESTDIR)$(UNITDIR)/pod@.service
	rm -f $(DESTDIR)$(SYSUSERSDIR)/podman-sd.conf $(DESTDIR)$(MANDIR)/podman-sd.1
	rm -rf $(DESTDIR)$(LIBDIR)

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache
