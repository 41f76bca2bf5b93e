"""pop.toml: what a PoP serves and where it forwards, read once at start.

    [server]
    host = "127.0.0.1"
    port = 8080
    store = "build/pop/store"            # uploaded components (operator API)
    workers = 4                          # requests doing edge work at once
    max_component_bytes = 134217728      # the largest upload accepted

    [auth]                               # no api_keys: the /v1 routes are open
    admin_tokens = ["..."]               # bearer tokens for /admin, never valid on /v1
    [auth.api_keys."sk-edge-1"]
    tokens_per_minute = 100000           # prompt + max_tokens, refilled continuously

    [origins.local]
    kind = "openai"                      # an OpenAI-compatible server (vLLM, llama.cpp, ...)
    url = "http://127.0.0.1:8000"
    prompt = "ids"                       # "ids": token ids to /v1/completions; "text"
    [origins.far]
    kind = "edgepop"                     # `edgepop origin` next to the model server
    url = "http://origin.example:9000"
    [origins.demo]
    kind = "demo"                        # the built-in echo, mounted at /demo-origin

    [[models]]
    name = "llama-3.2"                   # what clients ask for
    tokenizer = "build/components/llama-3.2.wasm"   # a path, or a component in the store
    chat_template = "build/tokenizers/llama-3.2/tokenizer_config.json"
    context_window = 131072
    origin = "demo"
    upstream_model = "meta-llama/Llama-3.2-1B-Instruct"   # the origin's name for it
    [models.rag]                         # optional: retrieve and augment before forwarding
    kb = "build/kb/demo"
    component = "build/components/rag.wasm"
    budget = 2000                        # tokens for the augmented prompt

Relative paths are relative to the config file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EdgepopError

ORIGIN_KINDS = ("openai", "edgepop", "demo")


class ConfigError(EdgepopError):
    """pop.toml is missing, malformed, or names something that does not exist."""


@dataclass(frozen=True)
class Quota:
    tokens_per_minute: int


@dataclass(frozen=True)
class Origin:
    name: str
    kind: str  # one of ORIGIN_KINDS
    url: str = ""  # empty for "demo": the PoP's own /demo-origin mount
    prompt: str = "ids"  # "openai" origins: send token ids ("ids") or the text ("text")
    api_key: str | None = None  # sent as a bearer token to "openai" origins
    timeout_s: float = 60.0  # per attempt, for the whole answer
    connect_timeout_s: float = 2.0
    retries: int = 2  # further attempts when the origin cannot be reached or answers 502/503
    compress: bool = True  # "edgepop" origins: zstd the token frame


@dataclass(frozen=True)
class Rag:
    kb: Path
    component: Path
    budget: int = 2000


@dataclass(frozen=True)
class Model:
    name: str
    tokenizer: str  # a .wasm path, or the name of a component in the store
    origin: str
    context_window: int
    chat_template: Path | None = None  # a tokenizer_config.json with "chat_template"
    upstream_model: str | None = None
    rag: Rag | None = None
    default_max_tokens: int = 256


@dataclass(frozen=True)
class PopConfig:
    models: tuple[Model, ...]
    origins: dict[str, Origin]
    host: str = "127.0.0.1"
    port: int = 8080
    store: Path = Path("build/pop/store")
    api_keys: dict[str, Quota] = field(default_factory=dict)
    admin_tokens: tuple[str, ...] = ()
    # Requests tokenized and augmented at once; more wait (the cores are the limit anyway).
    workers: int = 4
    # The largest component the operator API accepts.
    max_component_bytes: int = 128 << 20

    def model(self, name: str) -> Model | None:
        return next((m for m in self.models if m.name == name), None)


# What `edgepop serve` runs with no config: the Llama 3.2 tokenizer component, RAG over
# the demo knowledge base, and the built-in demo origin. Paths are relative to the
# working directory (a checkout after `make build`).
DEFAULT_TOML = """
[origins.demo]
kind = "demo"

[[models]]
name = "llama-3.2"
tokenizer = "build/components/llama-3.2.wasm"
chat_template = "build/tokenizers/llama-3.2/tokenizer_config.json"
context_window = 131072
origin = "demo"

[models.rag]
kb = "build/kb/demo"
component = "build/components/rag.wasm"
budget = 1000
"""


def default() -> PopConfig:
    return parse(tomllib.loads(DEFAULT_TOML), Path.cwd())


def load(path: Path) -> PopConfig:
    """Read and check pop.toml; a ConfigError names the key that is wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    return parse(data, path.parent)


def parse(data: dict[str, Any], base: Path) -> PopConfig:
    """A PopConfig from the TOML tables; relative paths resolve against `base`."""
    server = _table(data, "server")
    auth = _table(data, "auth")
    origins = {name: _origin(name, _table(_table(data, "origins"), name))
               for name in _table(data, "origins")}
    models = tuple(_model(i, m, base) for i, m in enumerate(data.get("models", [])))
    if not models:
        raise ConfigError("no [[models]]: a PoP must serve at least one model")
    for model in models:
        if model.origin not in origins:
            raise ConfigError(f"models.{model.name}.origin: no [origins.{model.origin}] "
                              f"(defined: {', '.join(origins) or 'none'})")
    api_keys = {key: Quota(_int(q, "tokens_per_minute", f"auth.api_keys.{key}", 1))
                for key, q in _table(auth, "api_keys").items()}
    admin_tokens = tuple(auth.get("admin_tokens", ()))
    if set(admin_tokens) & set(api_keys):
        raise ConfigError("auth: a token cannot be both an admin token and a client API key")
    return PopConfig(
        models=models, origins=origins,
        host=str(server.get("host", "127.0.0.1")), port=_int(server, "port", "server", 0, 8080),
        store=_path(server.get("store", "build/pop/store"), base),
        api_keys=api_keys, admin_tokens=admin_tokens, workers=_int(server, "workers", "server", 1, 4),
        max_component_bytes=_int(server, "max_component_bytes", "server", 1, 128 << 20),
    )


def _origin(name: str, table: dict[str, Any]) -> Origin:
    where = f"origins.{name}"
    kind = table.get("kind")
    if kind not in ORIGIN_KINDS:
        raise ConfigError(f"{where}.kind must be one of {', '.join(ORIGIN_KINDS)}, got {kind!r}")
    url = str(table.get("url", "")).rstrip("/")
    if kind != "demo" and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.url must be an http(s) URL, got {url!r}")
    prompt = table.get("prompt", "ids")
    if prompt not in ("ids", "text"):
        raise ConfigError(f"{where}.prompt must be \"ids\" or \"text\", got {prompt!r}")
    return Origin(
        name=name, kind=kind, url=url, prompt=prompt, api_key=table.get("api_key"),
        timeout_s=float(table.get("timeout_s", 60.0)), connect_timeout_s=float(table.get("connect_timeout_s", 2.0)),
        retries=_int(table, "retries", where, 0, 2), compress=bool(table.get("compress", True)),
    )


def _model(index: int, table: dict[str, Any], base: Path) -> Model:
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"models[{index}].name is missing")
    where = f"models.{name}"
    for key in ("tokenizer", "origin"):
        if not isinstance(table.get(key), str):
            raise ConfigError(f"{where}.{key} is missing")
    tokenizer = table["tokenizer"]
    if tokenizer.endswith(".wasm"):
        tokenizer = str(_path(tokenizer, base))
    rag = None
    if "rag" in table:
        r = _table(table, "rag")
        if "kb" not in r or "component" not in r:
            raise ConfigError(f"{where}.rag needs kb and component")
        rag = Rag(_path(r["kb"], base), _path(r["component"], base), _int(r, "budget", f"{where}.rag", 1, 2000))
    template = table.get("chat_template")
    return Model(
        name=name, tokenizer=tokenizer, origin=table["origin"],
        context_window=_int(table, "context_window", where, 1),
        chat_template=_path(template, base) if template else None,
        upstream_model=table.get("upstream_model"), rag=rag,
        default_max_tokens=_int(table, "default_max_tokens", where, 1, 256),
    )


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table")
    return value


def _int(table: dict[str, Any], key: str, where: str, minimum: int, default: int | None = None) -> int:
    value = table.get(key, default)
    if value is None:
        raise ConfigError(f"{where}.{key} is missing")
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{where}.{key} must be an integer >= {minimum}, got {value!r}")
    return value


def _path(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()
