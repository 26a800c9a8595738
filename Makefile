# make run   -- install, build the busybox rootfs, run a container
# make test  -- install test deps, run the whole suite
# make bench -- measure (see bench/README.md)
# make test-clients -- only the tests where podman and containerd drive pyrunc
# make test-cri -- only the Kubernetes node path: containerd's CRI runs pods on pyrunc
# make soak  -- the long reliability runs (docs/reliability.md)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ROOTFS := build/rootfs
# runc: pyrunc's outputs are compared with it; podman, containerd: real clients (~25 s);
# apparmor: apparmor_parser, for the AppArmor tests in the cgv2-vm guest (tests/test_lsm.py)
APT_PACKAGES := busybox-static libseccomp2 iproute2 runc uidmap python3 podman containerd apparmor \
	containernetworking-plugins

.PHONY: install apt rootfs run test test-clients test-cri soak bench clean

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
	$(PY) -m compileall -q core cli plugins  # bytecode, even under PYTHONDONTWRITEBYTECODE
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

test-clients: rootfs
	$(PY) -m pytest -q -m clients tests/test_pyrunc.py

# containerd's CRI plugin + CNI bridge play a Kubernetes node (~15 s, docs/kubernetes.md)
test-cri: rootfs
	$(PY) -m pytest -q -m cri tests/test_cri.py

soak: rootfs
	$(PY) -m pytest -q -m soak tests/test_reliability.py tests/test_fuzz_config.py

# make bench [BENCH_FLAGS=--quick]; BENCH_INSTALL=0: do not apt-get install runc/crun/time
# measured from a regular (non-editable) install, as users get it: the
# editable install's import finder alone costs ~20 ms per CLI call
BENCH_VENV := build/bench-venv
bench: rootfs
	[ -x $(BENCH_VENV)/bin/python ] || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --force-reinstall --no-deps . && \
	  $(BENCH_VENV)/bin/python -m pip install -q .
	BENCH_INSTALL=$${BENCH_INSTALL-1} $(BENCH_VENV)/bin/python bench/bench.py $(BENCH_FLAGS)

clean:
	rm -rf build $(VENV)
