.PHONY: run test test-quick setup lock
run:
	bash scripts/run.sh
# Everything CI runs: ruff, mypy, the audit, Vitest and every pytest test (slow ones too).
test:
	bash scripts/test.sh
# The fast tier while working: pytest without the tests marked slow (no set-up, no linters).
test-quick:
	.venv/bin/pytest -m "not slow" $(ARGS)
setup:
	bash scripts/setup.sh
# Regenerates requirements/*.txt from pyproject.toml (scripts/lock.py; ARGS=--upgrade to move).
lock:
	.venv/bin/python scripts/lock.py $(ARGS)
