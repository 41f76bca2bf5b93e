"""What a running PoP holds: the runtime, each model's edge pipeline, the knowledge bases,
the origins, the component store and the metrics.

Components are named in the config by path or by their name in the store; a store name
is looked up per request, so activating a version switches the next request over while
requests in flight keep the instance (and the compiled code) they started with.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from pathlib import Path

import anyio
import httpx
from starlette.applications import Starlette

from ..errors import ComponentLoadError, EdgepopError
from ..kb.embedder import Embedder
from ..kb.store import KnowledgeBase
from ..rag import Capabilities
from ..rag import warm_up as warm_up_rag
from ..registry import ComponentStore
from ..runtime import Runtime
from ..tokenizer import warm_up as warm_up_tokenizer
from . import demo_origin
from .chat import ChatTemplate
from .config import Model, PopConfig
from .metrics import Metrics
from .origins import OriginClient
from .pipeline import Edge, Versioned
from .quota import Quotas

DEMO_ORIGIN_URL = "http://demo-origin"
# Where the demo origin finds the tokenizer it decodes ids with, unless the config says.
DEMO_TOKENIZER_JSON = Path("build/tokenizers/llama-3.2/tokenizer.json")


class PopState:
    def __init__(self, config: PopConfig, runtime: Runtime, store: ComponentStore) -> None:
        self.config = config
        self.runtime = runtime
        self.store = store
        self.metrics = Metrics()
        self.quotas = Quotas(config.api_keys)
        self.limiter = anyio.CapacityLimiter(config.workers)
        self.edges: dict[str, Edge] = {}
        self.origins: dict[str, OriginClient] = {}
        self._embedder: Embedder | None = None
        self._kbs: dict[Path, KnowledgeBase] = {}
        self._loaded: dict[tuple[str, str], Versioned] = {}  # (what, version) -> loaded
        self._lock = threading.Lock()
        self._demo_client: httpx.AsyncClient | None = None

    @classmethod
    def build(cls, config: PopConfig) -> "PopState":
        """Load every model's components and knowledge base; errors name what is missing."""
        runtime = Runtime()
        try:
            state = cls(config, runtime, ComponentStore(config.store, runtime, max_bytes=config.max_component_bytes))
            for model in config.models:
                state.edges[model.name] = state._edge(model)
                state.edges[model.name].components()  # load them now: errors at start, not at the first request
        except BaseException:
            runtime.close()
            raise
        return state

    @staticmethod
    def demo_app(config: PopConfig) -> Starlette:
        return demo_origin.create_app(DEMO_TOKENIZER_JSON.resolve())

    def connect(self, client: httpx.AsyncClient, demo: Starlette | None = None) -> None:
        """Origin clients over `client`; the demo origin in-process over ASGI."""
        for name, origin in self.config.origins.items():
            if origin.kind == "demo":
                if self._demo_client is None:
                    transport = httpx.ASGITransport(app=demo or self.demo_app(self.config))
                    self._demo_client = httpx.AsyncClient(transport=transport)
                self.origins[name] = OriginClient(dataclasses.replace(origin, url=DEMO_ORIGIN_URL),
                                                  self._demo_client)
            else:
                self.origins[name] = OriginClient(origin, client)

    async def disconnect(self) -> None:
        if self._demo_client is not None:
            await self._demo_client.aclose()
            self._demo_client = None

    def names_in_use(self) -> set[str]:
        """Store names the config's models run."""
        return {m.tokenizer for m in self.config.models if not m.tokenizer.endswith(".wasm")}

    def reload(self, name: str) -> None:
        """Load the now active version of store name `name` for the models that run it."""
        for edge in self.edges.values():
            if edge.model.tokenizer == name:
                edge.components()

    def problems(self) -> list[str]:
        """Why the PoP is not ready to serve, if it is not."""
        found = []
        for edge in self.edges.values():
            try:
                edge.components()
            except EdgepopError as e:
                found.append(f"{edge.model.name}: {e}")
        return found

    def close(self) -> None:
        for kb in self._kbs.values():
            kb.close()
        self.store.close()
        self.runtime.close()

    def _edge(self, model: Model) -> Edge:
        template = ChatTemplate.from_tokenizer_config(model.chat_template) if model.chat_template else None
        rag = None
        if model.rag is not None:
            capabilities = Capabilities(self._embedder_(), self._kb(model.rag.kb))
            linker = capabilities.linker(self.runtime)
            rag_path = model.rag.component
            rag = lambda: self._component("rag", str(rag_path), linker)  # noqa: E731
        return Edge(model, lambda: self._component("tokenizer", model.tokenizer, None), rag, template,
                    self.quotas, on_instance=self._count_instance)

    def _component(self, kind: str, name_or_path: str, linker: object | None) -> Versioned:
        """The component a model names: a .wasm path, or the active version of a store name."""
        if name_or_path.endswith(".wasm"):
            path = Path(name_or_path)
            if not path.exists():
                raise ComponentLoadError(f"{path} does not exist (run `make build`)")
            version = _file_version(path)
        else:
            active = self.store.active(name_or_path)
            path, version = self.store.path(active.sha256), active.sha256
        key = (f"{kind}:{name_or_path}", version)
        with self._lock:
            found = self._loaded.get(key)
            if found is None:
                loaded = self.runtime.load(path, linker)  # type: ignore[arg-type]
                # As many prepared instances as requests may run at once (config.workers).
                loaded.prepare(self.config.workers, warm_up_tokenizer if kind == "tokenizer" else warm_up_rag)
                found = self._loaded[key] = Versioned(Path(name_or_path).stem if kind != "rag" else "rag",
                                                      loaded, version)
        return found

    def _count_instance(self, component: Versioned) -> None:
        self.metrics.instantiations.labels(component.name, component.version[:12]).inc()

    def _embedder_(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder()
        return self._embedder

    def _kb(self, path: Path) -> KnowledgeBase:
        kb = self._kbs.get(path)
        if kb is None:
            embedder = self._embedder_()
            kb = self._kbs[path] = KnowledgeBase.open(path, model=embedder.name, dimensions=embedder.dimensions)
        return kb


_versions: dict[tuple[str, int, int], str] = {}


def _file_version(path: Path) -> str:
    """A component file's sha256, computed once per (path, size, mtime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _versions:
        _versions[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _versions[key]
