# The README's two commands: `make demo` and `make test`. Both build .venv themselves from python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test checks prereqs lint typecheck importlint docs unit sysdeps s3server clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the integration tests need (SLURM + munge for the real slurmctld, Chromium for the
# report screenshot). Installed only when missing, and only where apt-get and root are available.
SYSDEPS := slurmctld slurmd slurm-client munge chromium
sysdeps:
	@missing=""; for p in $(SYSDEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "warning: missing Debian packages:$$missing (run as root to install them); their tests will be skipped"; fi; \
	fi

# A loopback S3 server for Tansu's only persistent engine in this build (s3://; its postgres and sqlite
# engines are not compiled in), used by the broker-restart fault test. Its own virtualenv: botocore
# pins python-dateutil<3 while the kubernetes client needs >=3.
S3SERVER := $(VENV)/s3server/bin/moto_server
$(S3SERVER):
	$(PYTHON) -m venv $(VENV)/s3server
	$(VENV)/s3server/bin/python -m pip install --quiet 'moto[server]>=5.1,<6' \
	  || echo "warning: moto[server] did not install; the broker-restart test will be skipped"
s3server: $(S3SERVER)

lint: $(STAMP)
	$(BIN)/ruff check .

# mypy's incremental cache outside the checkout, like pip's wheel cache: a fresh clone (CI) checks in
# under a second what takes ~30 s cold. mypy re-checks any module whose content hash changed.
MYPY_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/breakfix-mypy
typecheck: $(STAMP)
	$(BIN)/mypy --cache-dir "$(MYPY_CACHE)"

importlint: $(STAMP)
	$(BIN)/lint-imports

# The docs site (docs/, mkdocs.yml) must build without a warning: a broken link or a page that names a
# missing file fails the build, and so `make test`.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet --site-dir .site

# The checks and the tests' other prerequisites at once (mypy, the longest check, is CPU; the S3
# server's pip install and apt mostly wait on the network and disk), each job's output printed when it
# ends. .venv is built first: the S3 server's venv lives inside it, and two `python -m venv` racing to
# create .venv fail with "File exists".
checks: lint typecheck importlint docs
prereqs: $(STAMP)
	$(MAKE) --no-print-directory -j4 --output-sync=target checks sysdeps $(S3SERVER)

# Three passes. The fast tests on two xdist workers (each starts its own broker and chdb; the suite is
# mostly waiting on subprocesses, so two overlap well even on two cores). Then the slow end-to-end,
# kill-and-restart and replay tests, also on two workers, a whole test file to a worker (a file's
# module fixture, e.g. the local-stack tests' one `breakfix up`, starts once). Last the tests marked
# `alone`, one at a time, because their figures (the load generator's rate, where a kill lands) are
# only meaningful on an otherwise idle machine. Any pass failing, or collecting nothing, fails.
test: prereqs
	$(BIN)/python -m pytest -m 'not slow' -n 2
	$(BIN)/python -m pytest -m 'slow and not alone' -n 2 --dist loadfile
	$(BIN)/python -m pytest -m alone

# KEEP=1: after the demo, leave the local stack (`breakfix up`) running for the operator commands;
# `$(BIN)/breakfix down` stops it.
demo: $(STAMP)
	$(BIN)/breakfix demo
	@if [ -n "$(KEEP)" ]; then $(BIN)/breakfix up && echo "stop it with: $(BIN)/breakfix down"; fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo .site
