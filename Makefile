# make run   -- install, build the busybox rootfs, run a container
# make test  -- install test deps, run the whole suite
# make bench -- measure (see bench/README.md)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ROOTFS := build/rootfs
APT_PACKAGES := busybox-static libseccomp2 iproute2 uidmap python3

.PHONY: install apt rootfs run test bench clean

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	    echo "apt-get install$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; }; \
	fi

$(VENV)/.installed: setup.cfg pyproject.toml
	$(MAKE) apt
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

$(ROOTFS)/bin/busybox: tools/mkrootfs
	tools/mkrootfs $(ROOTFS)

rootfs: install $(ROOTFS)/bin/busybox

run: rootfs
	@mkdir -p build/demo
	@$(VENV)/bin/nsinit config | $(PY) -c 'import json,sys; c=json.load(sys.stdin); c["rootfs"]="../rootfs"; json.dump(c, open("build/demo/container.json","w"), indent=2)'
	cd build/demo && ../../$(VENV)/bin/nsinit exec --id demo sh -c \
	  'echo "hostname: $$(hostname)"; echo "--- ps"; ps; echo "--- ip link"; ip link; echo "--- mounts"; cat /proc/mounts'

test: rootfs
	$(PY) -m pytest -q

bench: rootfs
	$(PY) bench/bench.py

clean:
	rm -rf build $(VENV)
