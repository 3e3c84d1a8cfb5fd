# The two commands: `make run` and `make test`. Both create .venv and install on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean bytecode

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# Bytecode for our sources even where PYTHONDONTWRITEBYTECODE is set: start-up otherwise compiles
# every module again on each start (about half of `pyjetstream server`'s start-up time).
bytecode: $(STAMP)
	$(PY) -m compileall -q src

run: $(STAMP) bytecode
	$(VENV)/bin/pyjetstream up

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src

test: $(STAMP) bytecode lint
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) data .pytest_cache
