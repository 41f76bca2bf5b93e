# edgepop: `make run` builds everything and runs the main job; `make test` passes the tests.
# Both start from a bare checkout: virtual environment, dependencies, fixtures, component builds.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Compiled (AOT) components live inside build/, so a clean clone starts clean.
export EDGEPOP_CACHE_DIR ?= $(CURDIR)/build/cache

# Real models' tokenizers (tools/fetch_tokenizers.py says where each comes from).
MODELS     := llama-3.2 qwen3 gpt2 gpt-4o gpt-3.5-turbo deepseek-v3 gpt-oss
COMPONENTS := $(MODELS:%=build/components/%.wasm)
GUEST_SRC  := $(wildcard components/tokenizer/*.py components/tokenizer/edgepop_tokenizer/*.py wit/*.wit)
BUILD_SRC  := host/build.py

.PHONY: all venv fixtures build run test bench clean

all: build

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

fixtures: $(MODELS:%=build/tokenizers/%/tokenizer.json)
build/tokenizers/%/tokenizer.json: | $(VENV)/.installed
	$(BIN)/python tools/fetch_tokenizers.py $*

build/components/%.wasm: build/tokenizers/%/tokenizer.json $(GUEST_SRC) $(BUILD_SRC) | $(VENV)/.installed
	$(BIN)/edgepop build tokenizer --tokenizer-json $< -o $@

build: venv fixtures $(COMPONENTS)

# The main job (for now): describe the Llama 3.2 tokenizer component and tokenize a prompt with it.
run: build
	$(BIN)/edgepop info build/components/llama-3.2.wasm
	$(BIN)/edgepop tokenize --component build/components/llama-3.2.wasm \
		"Tokenized at the edge, next to the user: the origin receives ids, not text."

test: build
	$(BIN)/pytest

bench: build
	$(BIN)/python tools/bench_report.py

clean:
	rm -rf build
