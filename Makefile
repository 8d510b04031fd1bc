# The README's two commands: `make demo` and `make test`. Both build .venv themselves from python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck importlint unit sysdeps clean

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

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

importlint: $(STAMP)
	$(BIN)/lint-imports

test: $(STAMP) sysdeps lint typecheck importlint
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/breakfix demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo
