# RRG Desk — the two commands a developer needs: `make run` and `make test`.
PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
SAMPLE      ?= resources/samples/study1

.PHONY: run test bench fuzz crash package package-test lint clean-venv

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m rrg_desk $(SAMPLE)

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m "not benchmark and not packaging" $(PYTEST_ARGS)

# import layers, then dead code (false positives, each with its reason, in tools/vulture_whitelist.py)
lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m vulture rrg_desk train tools/vulture_whitelist.py

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m bench

# >= 10,000 malformed DICOM/PNG/JPEG/bundle inputs, then 300 SIGKILLs of a saving session
fuzz: $(STAMP)
	RUST_BACKTRACE=0 $(PY) -m fuzz $(FUZZ_ARGS); status=$$?; $(MAKE) crash && exit $$status

crash: $(STAMP)
	$(PY) -m fuzz crash --iterations $(or $(CRASH_ITERATIONS),300)

# dist/rrg-desk: PyInstaller one-folder build, then its --selftest in a clean environment; the
# exports it checked stay in dist/selftest-exports for external validators.
# PACKAGE_ARGS=--random-bundle builds with random weights while resources/models/default is missing.
package: $(STAMP)
	$(PY) packaging/build.py --selftest --keep dist/selftest-exports $(PACKAGE_ARGS)

# Builds (unless RRG_DESK_FROZEN_APP=dist/rrg-desk) and tests the frozen app; not in `make test` (too slow).
package-test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m packaging tests/packaging $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
