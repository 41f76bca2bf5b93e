"""The host runtime: compile components once, run each request in a fresh instance.

The isolation model is that of Fastly Compute and Spin: every call site asks for a new
`Instance` (a new wasmtime store), runs its calls, and drops it, so nothing a request
leaves behind in guest memory is seen by the next one. What makes that affordable:

- the component is compiled ahead of time once and the artefact kept on disk, so
  loading it later is a memory map, not a compile; the artefact is read through the
  page cache first, so that the kernel caches it in large folios, which make an
  instance's page faults cheaper (`page_cache`);
- componentize-py components carry their initialized Python heap as a memory image,
  which wasmtime maps copy-on-write, so instantiating does not copy it;
- `LoadedComponent.prepare` keeps fresh instances made ahead of time, so a request
  does not wait for instantiation or for the page faults of a first call;
- every call runs under an epoch deadline and every store under a memory limit, and a
  trap poisons only the instance it happened in.

No WASI capability is granted beyond what CPython needs to run: no preopened
directories, no environment, no arguments, no network, stdin empty, stdout discarded
and stderr captured (bounded) so guest tracebacks reach error reports.
"""

from __future__ import annotations

import collections
import hashlib
import math
import os
import threading
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable

from wasmtime import Config, Engine, Store, WasiConfig, WasmtimeError
from wasmtime.component import Component, ExportIndex, Func, Linker

from .canonical import Signature
from .config import MiB, RuntimeConfig
from .errors import ComponentLoadError, DeadlineExceeded, EdgepopError, GuestTrap, MemoryLimitExceeded
from .files import write_atomically
from .page_cache import read_through


WarmUp = Callable[["Instance"], None]


class Runtime:
    """One wasmtime engine with edgepop's settings, and the components loaded into it."""

    def __init__(self, config: RuntimeConfig | None = None) -> None:
        self.config = config or RuntimeConfig()
        self.engine = Engine(_engine_config())
        self.linker = self.new_linker()
        self._ticker = _EpochTicker(self.engine, self.config.epoch_tick_ms / 1000)
        self.requests = RequestActivity()
        self._loaded: dict[tuple[tuple[str, int, int], int], LoadedComponent] = {}
        self._lock = threading.Lock()

    def new_linker(self) -> Linker:
        """A linker with WASI (granting nothing), for components whose host imports need more."""
        linker = Linker(self.engine)
        linker.add_wasip2()
        return linker

    def load(self, path: str | os.PathLike[str], linker: Linker | None = None) -> "LoadedComponent":
        """Load a component, compiling it only if no compiled artefact is cached for it.

        `linker` provides its imports (default: WASI only, see `new_linker`).
        """
        path = Path(path).resolve()
        linker = linker or self.linker
        try:
            key = _identity(path)
        except OSError as e:
            raise ComponentLoadError(f"cannot read component {path}: {e.strerror}") from None
        with self._lock:
            loaded = self._loaded.get((key, id(linker)))
            if loaded is None:
                compiled = self._compiled(path, key)
                loaded = self._loaded[(key, id(linker))] = LoadedComponent(self, path, compiled, linker)
            return loaded

    def artefact_path(self, path: str | os.PathLike[str]) -> Path:
        """Where the compiled (AOT) artefact of the component at `path`, as it is now, is kept."""
        return self._artefact(_identity(Path(path).resolve()))

    def _artefact(self, key: tuple[str, int, int]) -> Path:
        stamp = hashlib.sha256(repr((key, _ENGINE_FINGERPRINT)).encode()).hexdigest()[:32]
        return self.config.cache_dir / "compiled" / f"{stamp}.cwasm"

    def _compiled(self, path: Path, key: tuple[str, int, int]) -> Component:
        """The component at `path`, from the AOT cache when an artefact for this exact file exists.

        Instances always map the kept artefact, read through the page cache first so that
        the pages they fault in are cached in large folios (see `page_cache`). A fresh
        compile's own component would give them a private copy of the memory image in
        memory, cached a page at a time: 2.0 ms cold instead of 1.7 on our test machine.
        """
        artefact = self._artefact(key)
        if artefact.exists():
            read_through(artefact)
            try:
                return Component.deserialize_file(self.engine, str(artefact))
            except WasmtimeError:
                artefact.unlink(missing_ok=True)  # written by an incompatible engine: compile again
        data = path.read_bytes()
        _check_is_component(path, data)
        try:
            component = Component(self.engine, data)
        except WasmtimeError as e:
            raise ComponentLoadError(f"{path} does not compile: {_first_line(e)}") from None
        write_atomically(artefact, component.serialize())  # writing caches it in large folios
        return Component.deserialize_file(self.engine, str(artefact))

    def close(self) -> None:
        for loaded in self._loaded.values():
            loaded.close()
        self._ticker.stop()


class LoadedComponent:
    """A compiled component, ready to be instantiated any number of times."""

    def __init__(self, runtime: Runtime, path: Path, component: Component, linker: Linker) -> None:
        self.runtime = runtime
        self.path = path
        self.component = component
        self.linker = linker
        self._exports: dict[tuple[str, str], ExportIndex] = {}
        self._signatures: dict[tuple[str, str], Signature] = {}
        self._pool: _InstancePool | None = None

    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def instantiate(self) -> "Instance":
        """A fresh instance in a fresh store: the unit of isolation, one per request.

        With `prepare()` called, it comes ready-made from the pool, still never used.
        """
        requests = self.runtime.requests
        requests.started()  # before taking one, so that the pool's thread does not refill meanwhile
        try:
            pool = self._pool
            instance = pool.take() if pool else Instance(self)
        except BaseException:
            requests.finished()
            raise
        instance._serving(requests)
        return instance

    def prepare(self, count: int, warm_up: WarmUp | None = None) -> None:
        """Keep `count` fresh instances made ahead of time, off the request path.

        Instantiating a componentize-py component costs about 1.2 ms here, most of it
        wasmtime filling CPython's function tables, and every first touch of a page of
        the copy-on-write heap is a page fault (about 3 µs each on this VM, hundreds per
        first call). A background thread does that work ahead, while no request holds an
        instance of this runtime (or at once when the pool runs dry), so that it does not
        compete with requests for the cores and the GIL. `warm_up` runs on each prepared
        instance before it is handed out; it must be the same for every instance and carry
        no request's data, so what it leaves behind is as if it had been baked in at build time.
        """
        if self._pool:
            self._pool.close()
        self._pool = _InstancePool(self, count, warm_up) if count else None

    def close(self) -> None:
        if self._pool:
            self._pool.close()
            self._pool = None

    def export_index(self, interface: str, function: str) -> ExportIndex:
        """Where `interface`'s `function` is, resolved once for every instance."""
        key = (interface, function)
        index = self._exports.get(key)
        if index is None:
            parent = self.component.get_export_index(interface)
            found = self.component.get_export_index(function, parent) if parent else None
            if found is None:
                raise ComponentLoadError(f"{self.path.name} does not export {interface}#{function}")
            index = self._exports[key] = found
        return index

    def signature(self, interface: str, function: str, func: Func, store: Store) -> Signature:
        key = (interface, function)
        signature = self._signatures.get(key)
        if signature is None:
            func_type = func.type(store)
            signature = self._signatures[key] = Signature(func_type.params, func_type.result)
        return signature


class Instance:
    """One store and one instance of a component. A trap poisons it; make a new one then."""

    def __init__(self, loaded: LoadedComponent) -> None:
        self.loaded = loaded
        runtime = loaded.runtime
        self._limits = runtime.config.limits
        self._requests: RequestActivity | None = None  # set while a request holds this instance
        self._stderr = bytearray()
        self._trap: GuestTrap | None = None
        self.store = Store(runtime.engine)
        self.store.set_limits(memory_size=self._limits.memory_bytes)
        self.store.set_wasi(self._wasi())
        self._set_deadline(self._limits.instantiate_deadline_ms)
        try:
            self._instance = loaded.linker.instantiate(self.store, loaded.component)
        except WasmtimeError as e:
            raise self._classify(e, "instantiation", self._limits.instantiate_deadline_ms) from None

    def call(self, interface: str, function: str, *args: Any) -> Any:
        """Call an export under the call deadline; `result` values come back as Ok/Err."""
        if self._trap is not None:
            raise GuestTrap(f"this instance trapped earlier ({self._trap}); instantiate a new one")
        if self._instance is None:
            raise EdgepopError("this instance was closed; instantiate a new one")
        loaded = self.loaded
        func = self._instance.get_func(self.store, loaded.export_index(interface, function))
        if func is None:
            raise ComponentLoadError(f"{loaded.path.name} does not export {interface}#{function}")
        signature = loaded.signature(interface, function, func, self.store)
        self._set_deadline(self._limits.call_deadline_ms)
        try:
            return signature.call(self.store, func, *args)
        except WasmtimeError as e:
            self._trap = self._classify(e, function, self._limits.call_deadline_ms)
            raise self._trap from None

    def close(self) -> None:
        """Free the store (and its pooled slot) now rather than when it is garbage collected."""
        self.store = None  # type: ignore[assignment]
        self._instance = None
        requests, self._requests = self._requests, None
        if requests is not None:
            requests.finished()

    def _serving(self, requests: "RequestActivity") -> None:
        """Count this instance, which `requests` counts as held already, as held until it is closed."""
        self._requests = requests

    def __enter__(self) -> "Instance":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stderr(self) -> str:
        """What the guest wrote to stderr so far (bounded)."""
        return self._stderr.decode("utf-8", "replace")

    def _wasi(self) -> WasiConfig:
        wasi = WasiConfig()
        limit = self._limits.stderr_bytes
        buffer = self._stderr  # not `self`: wasmtime-py keeps the callback until the store is gone

        def capture(data: bytes) -> None:
            room = limit - len(buffer)
            if room > 0:
                buffer.extend(data[:room])

        wasi.stderr_custom = capture
        wasi.stdout_custom = lambda data: None
        return wasi

    def _set_deadline(self, milliseconds: int) -> None:
        tick = self.loaded.runtime.config.epoch_tick_ms
        self.store.set_epoch_deadline(max(1, math.ceil(milliseconds / tick)) + 1)

    def _classify(self, error: WasmtimeError, during: str, deadline_ms: int) -> GuestTrap:
        """Name what went wrong: deadline, memory limit, or another trap (with the guest's stderr)."""
        message = str(error)
        stderr = self.stderr
        name = self.loaded.path.name
        if "wasm trap: interrupt" in message:
            return DeadlineExceeded(f"{name}: {during} ran past its CPU deadline of {deadline_ms} ms", stderr)
        if _out_of_memory(message, stderr):
            limit = self._limits.memory_bytes
            return MemoryLimitExceeded(
                f"{name}: {during} exceeded the instance memory limit of {limit // MiB} MiB", stderr
            )
        detail = _trap_line(message)
        tail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        return GuestTrap(f"{name}: {during} trapped: {detail}" + (f" (guest stderr: {tail})" if tail else ""), stderr)


class RequestActivity:
    """How many instances requests hold (and requests a server counts as in progress),
    runtime-wide: pools refill when there are none."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.held = 0

    def started(self) -> None:
        with self.changed:
            self.held += 1

    def finished(self) -> None:
        with self.changed:
            self.held -= 1
            self.changed.notify_all()


class _InstancePool:
    """Fresh instances made by a background thread, handed out once each."""

    # A pool that is not empty refills at the latest this long after a take, even under steady load.
    MAX_REFILL_DELAY_S = 1.0

    def __init__(self, loaded: LoadedComponent, size: int, warm_up: WarmUp | None) -> None:
        self._loaded = loaded
        self._warm_up = warm_up
        self._size = size
        self._ready: collections.deque[Instance] = collections.deque()
        self._requests = loaded.runtime.requests
        self._stopped = False
        self._thread = threading.Thread(target=self._fill, name="edgepop-prepare", daemon=True)
        self._thread.start()

    def take(self) -> "Instance":
        with self._requests.changed:
            instance = self._ready.popleft() if self._ready else None
            self._requests.changed.notify_all()
        return instance or Instance(self._loaded)  # the pool fell behind: instantiate on the spot

    def _fill(self) -> None:
        changed = self._requests.changed
        while True:
            with changed:
                changed.wait_for(lambda: self._stopped or len(self._ready) < self._size)
                changed.wait_for(lambda: self._stopped or not self._ready or self._requests.held == 0,
                                 timeout=self.MAX_REFILL_DELAY_S)
                if self._stopped:
                    return
            try:
                instance = Instance(self._loaded)
                if self._warm_up:
                    self._warm_up(instance)
            except EdgepopError:
                with changed:  # a broken component: retry slowly, requests still get errors inline
                    changed.wait_for(lambda: self._stopped, timeout=1.0)
                continue
            with changed:
                self._ready.append(instance)

    def close(self) -> None:
        with self._requests.changed:
            self._stopped = True
            self._requests.changed.notify_all()
        self._thread.join()
        while self._ready:
            self._ready.popleft().close()


# Compiled artefacts depend on the wasmtime release and on the settings that change codegen.
_ENGINE_FINGERPRINT = f"wasmtime {version('wasmtime')}, epoch interruption"


def _engine_config() -> Config:
    engine_config = Config()
    engine_config.epoch_interruption = True
    return engine_config


class _EpochTicker:
    """Advances the engine's epoch on a timer so deadlines turn into traps."""

    def __init__(self, engine: Engine, interval_s: float) -> None:
        self._engine = engine
        self._interval = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgepop-epoch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self._engine.increment_epoch()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def _identity(path: Path) -> tuple[str, int, int]:
    """What tells a component file's versions apart: path, size and modification time."""
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)


_WASM_MAGIC = b"\0asm"


def _check_is_component(path: Path, data: bytes) -> None:
    """Refuse what is not a WebAssembly component, with the reason."""
    if data[:4] != _WASM_MAGIC:
        raise ComponentLoadError(f"{path} is not a WebAssembly binary")
    layer = int.from_bytes(data[6:8], "little")
    if layer != 1:
        raise ComponentLoadError(f"{path} is a core WebAssembly module, not a component")


def _out_of_memory(message: str, stderr: str) -> bool:
    """A guest out of memory, or a component whose baked heap alone is over the limit."""
    return ("MemoryError" in stderr or "out of memory" in stderr.lower() or "memory allocation" in message
            or "exceeds memory limits" in message)


def _trap_line(message: str) -> str:
    """The line of a wasmtime error that says what happened: the trap, else the cause
    (a host function's failure), else the first line."""
    lines = message.splitlines()
    for line in lines:
        if "wasm trap:" in line:
            return line.strip()
    if "Caused by:" in lines:
        cause = [line.strip() for line in lines[lines.index("Caused by:") + 1:] if line.strip()]
        if cause:
            return cause[0]
    return _first_line(message)


def _first_line(error: Any) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
