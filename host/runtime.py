"""The host runtime: compile components once, run each request in a fresh instance.

The isolation model is that of Fastly Compute and Spin: every call site asks for a new
`Instance` (a new wasmtime store), runs its calls, and drops it, so nothing a request
leaves behind in guest memory is seen by the next one. What makes that affordable:

- the component is compiled ahead of time once and the artefact kept on disk, so
  loading it later is a memory map, not a compile;
- componentize-py components carry their initialized Python heap as a memory image,
  which wasmtime maps copy-on-write, and the pooling allocator keeps recently used
  memory slots resident, so a new instance does not page-fault its way back in;
- every call runs under an epoch deadline and every store under a memory limit, and a
  trap poisons only the instance it happened in.

No WASI capability is granted beyond what CPython needs to run: no preopened
directories, no environment, no arguments, no network, stdin empty, stdout discarded
and stderr captured (bounded) so guest tracebacks reach error reports.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from importlib.metadata import version

from wasmtime import Config, Engine, Store, WasiConfig, WasmtimeError, _ffi as ffi
from wasmtime.component import Component, ExportIndex, Func, Linker

from .canonical import Signature
from .config import MiB, RuntimeConfig
from .errors import ComponentLoadError, DeadlineExceeded, GuestTrap, MemoryLimitExceeded


class Runtime:
    """One wasmtime engine with edgepop's settings, and the components loaded into it."""

    def __init__(self, config: RuntimeConfig | None = None) -> None:
        self.config = config or RuntimeConfig()
        self.engine = Engine(_engine_config(self.config))
        self.linker = Linker(self.engine)
        self.linker.add_wasip2()
        self._ticker = _EpochTicker(self.engine, self.config.epoch_tick_ms / 1000)
        self._loaded: dict[tuple[str, int, int], LoadedComponent] = {}
        self._lock = threading.Lock()

    def load(self, path: str | os.PathLike[str]) -> "LoadedComponent":
        """Load a component, compiling it only if no compiled artefact is cached for it."""
        path = Path(path).resolve()
        try:
            stat = path.stat()
        except OSError as e:
            raise ComponentLoadError(f"cannot read component {path}: {e.strerror}") from None
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is None:
                loaded = self._loaded[key] = LoadedComponent(self, path, self._compiled(path, key))
            return loaded

    def _compiled(self, path: Path, key: tuple[str, int, int]) -> Component:
        """The component at `path`, from the AOT cache when an artefact for this exact file exists."""
        stamp = hashlib.sha256(repr((key, _ENGINE_FINGERPRINT)).encode()).hexdigest()[:32]
        artefact = self.config.cache_dir / "compiled" / f"{stamp}.cwasm"
        if artefact.exists():
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
        _write_atomically(artefact, component.serialize())
        return component

    def close(self) -> None:
        self._ticker.stop()


class LoadedComponent:
    """A compiled component, ready to be instantiated any number of times."""

    def __init__(self, runtime: Runtime, path: Path, component: Component) -> None:
        self.runtime = runtime
        self.path = path
        self.component = component
        self._exports: dict[tuple[str, str], ExportIndex] = {}
        self._signatures: dict[tuple[str, str], Signature] = {}

    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def instantiate(self) -> "Instance":
        """A fresh instance in a fresh store: the unit of isolation, one per request."""
        return Instance(self)

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
        self._stderr = bytearray()
        self._trap: GuestTrap | None = None
        self.store = Store(runtime.engine)
        self.store.set_limits(memory_size=self._limits.memory_bytes)
        self.store.set_wasi(self._wasi())
        self._set_deadline(self._limits.instantiate_deadline_ms)
        try:
            self._instance = runtime.linker.instantiate(self.store, loaded.component)
        except WasmtimeError as e:
            raise self._classify(e, "instantiation", self._limits.instantiate_deadline_ms) from None

    def call(self, interface: str, function: str, *args: Any) -> Any:
        """Call an export under the call deadline; `result` values come back as Ok/Err."""
        if self._trap is not None:
            raise GuestTrap(f"this instance trapped earlier ({self._trap}); instantiate a new one")
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

    @property
    def stderr(self) -> str:
        """What the guest wrote to stderr so far (bounded)."""
        return self._stderr.decode("utf-8", "replace")

    def _wasi(self) -> WasiConfig:
        wasi = WasiConfig()
        limit = self._limits.stderr_bytes

        def capture(data: bytes) -> None:
            room = limit - len(self._stderr)
            if room > 0:
                self._stderr += data[:room]

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


# Compiled artefacts depend on the wasmtime release and on the settings that change codegen.
_ENGINE_FINGERPRINT = f"wasmtime {version('wasmtime')}, epoch interruption"


def _engine_config(config: RuntimeConfig) -> Config:
    engine_config = Config()
    engine_config.epoch_interruption = True
    if config.pooled_instances:
        _use_pooling_allocator(engine_config, config)
    return engine_config


def _use_pooling_allocator(engine_config: Config, config: RuntimeConfig) -> None:
    """Preallocate instance slots so instantiation reuses memory instead of mapping it afresh.

    Keeping the first pages of each recycled memory resident avoids the page faults a
    fresh copy-on-write mapping takes on the first call (about half a millisecond for a
    Python component here). wasmtime-py has no wrapper for this, so it goes through the
    C API that wasmtime-py itself binds.
    """
    n = config.pooled_instances
    pool = ffi.wasmtime_pooling_allocation_config_new()
    try:
        ffi.wasmtime_pooling_allocation_config_total_component_instances_set(pool, n)
        ffi.wasmtime_pooling_allocation_config_max_core_instances_per_component_set(pool, 64)
        ffi.wasmtime_pooling_allocation_config_total_core_instances_set(pool, n * 64)
        ffi.wasmtime_pooling_allocation_config_max_memories_per_component_set(pool, 8)
        ffi.wasmtime_pooling_allocation_config_total_memories_set(pool, n * 2)
        ffi.wasmtime_pooling_allocation_config_max_tables_per_component_set(pool, 32)
        ffi.wasmtime_pooling_allocation_config_total_tables_set(pool, n * 8)
        ffi.wasmtime_pooling_allocation_config_table_elements_set(pool, 1 << 17)
        ffi.wasmtime_pooling_allocation_config_max_memory_size_set(pool, config.limits.memory_bytes)
        ffi.wasmtime_pooling_allocation_config_max_core_instance_size_set(pool, 1 << 20)
        ffi.wasmtime_pooling_allocation_config_max_component_instance_size_set(pool, 1 << 20)
        ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pool, 64 * MiB)
        ffi.wasmtime_pooling_allocation_config_table_keep_resident_set(pool, 1 * MiB)
        ffi.wasmtime_pooling_allocation_config_max_unused_warm_slots_set(pool, 8)
        ffi.wasmtime_pooling_allocation_strategy_set(engine_config.ptr(), pool)
    finally:
        ffi.wasmtime_pooling_allocation_config_delete(pool)


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


_WASM_MAGIC = b"\0asm"


def _check_is_component(path: Path, data: bytes) -> None:
    """Refuse what is not a WebAssembly component, with the reason."""
    if data[:4] != _WASM_MAGIC:
        raise ComponentLoadError(f"{path} is not a WebAssembly binary")
    layer = int.from_bytes(data[6:8], "little")
    if layer != 1:
        raise ComponentLoadError(f"{path} is a core WebAssembly module, not a component")


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _out_of_memory(message: str, stderr: str) -> bool:
    return "MemoryError" in stderr or "out of memory" in stderr.lower() or "memory allocation" in message


def _trap_line(message: str) -> str:
    for line in message.splitlines():
        if "wasm trap:" in line:
            return line.strip()
    return _first_line(message)


def _first_line(error: Any) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
