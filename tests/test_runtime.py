"""The host keeps serving whatever a guest does: loops, memory exhaustion, traps, bad values."""

from __future__ import annotations

import gc
import shutil
import sys
import time
from pathlib import Path

import pytest

from edgepop.config import Limits, MiB, RuntimeConfig
from edgepop.errors import ComponentLoadError, DeadlineExceeded, GuestTrap, MemoryLimitExceeded
from edgepop.runtime import Runtime
from edgepop.tokenizer import INTERFACE, MalformedIds, TokenizerComponent, TokenizerSession

from page_cache_state import cached_fraction, evict
from support import BUILD_DIR, build_test_component, component_path

DEADLINE_MS = 1000


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    rt = Runtime(RuntimeConfig(limits=Limits(memory_bytes=192 * MiB, call_deadline_ms=DEADLINE_MS)))
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def misbehaving(runtime: Runtime) -> TokenizerComponent:
    return TokenizerComponent(runtime.load(build_test_component("misbehaving")))


def serves(component: TokenizerComponent) -> bool:
    """The host still answers a normal request, in a fresh instance."""
    return component.encode("ok") == list(b"ok")


def test_a_guest_looping_forever_is_stopped_at_its_deadline(misbehaving: TokenizerComponent) -> None:
    session = misbehaving.session()
    start = time.perf_counter()
    with pytest.raises(DeadlineExceeded, match=f"CPU deadline of {DEADLINE_MS} ms"):
        session.encode("loop")
    elapsed_ms = (time.perf_counter() - start) * 1000
    assert DEADLINE_MS <= elapsed_ms < DEADLINE_MS * 4, elapsed_ms
    assert serves(misbehaving)


def test_a_guest_exhausting_memory_gets_a_clear_error(misbehaving: TokenizerComponent) -> None:
    with pytest.raises(MemoryLimitExceeded, match="memory limit of 192 MiB") as caught:
        misbehaving.encode("oom")
    assert "MemoryError" in caught.value.stderr
    assert serves(misbehaving)


def test_a_component_whose_baked_heap_is_over_the_limit_is_refused_naming_it() -> None:
    """Gemma 3's component starts with 122 MiB of linear memory: under a 64 MiB limit it
    cannot be instantiated, and the error says it is the memory limit."""
    runtime = Runtime(RuntimeConfig(limits=Limits(memory_bytes=64 * MiB)))
    try:
        with pytest.raises(MemoryLimitExceeded, match="instantiation exceeded the instance memory limit of 64 MiB"):
            TokenizerComponent(runtime.load(component_path("gemma-3"))).describe()
    finally:
        runtime.close()


def test_a_guest_exception_becomes_a_trap_with_its_traceback(misbehaving: TokenizerComponent) -> None:
    with pytest.raises(GuestTrap, match="trapped") as caught:
        misbehaving.encode("raise")
    assert not isinstance(caught.value, (DeadlineExceeded, MemoryLimitExceeded))
    assert "the guest failed on purpose" in caught.value.stderr
    assert serves(misbehaving)


def test_a_trapped_instance_is_not_used_again(misbehaving: TokenizerComponent) -> None:
    session = misbehaving.session()
    with pytest.raises(GuestTrap):
        session.encode("raise")
    with pytest.raises(GuestTrap, match="instantiate a new one"):
        session.encode("ok")


def test_each_instance_starts_from_the_same_state(misbehaving: TokenizerComponent) -> None:
    """Per-request isolation: what one instance allocates is not seen by the next."""
    with pytest.raises(MemoryLimitExceeded):
        misbehaving.encode("oom")  # fills its module-level HOARD until it dies
    for _ in range(3):
        assert serves(misbehaving)  # a fresh instance has an empty HOARD and room to run


def test_ids_cross_the_boundary_intact(misbehaving: TokenizerComponent) -> None:
    session = misbehaving.session()
    assert session.encode("ids:5000") == list(range(5000))
    assert session.encode("ids:0") == []
    assert session.decode(list(range(70000, 75000))) == "5000"
    assert session.encode_batch(["ids:3", "ab"]) == [[0, 1, 2], [97, 98]]


def test_malformed_packed_ids_are_refused_by_the_host(misbehaving: TokenizerComponent) -> None:
    session = misbehaving.session()
    with pytest.raises(MalformedIds, match="0..4294967295"):
        session.decode([-1])
    with pytest.raises(MalformedIds):
        session.decode([2**32])


def test_wrong_argument_types_are_refused_before_the_call(misbehaving: TokenizerComponent) -> None:
    instance = misbehaving.loaded.instantiate()
    with pytest.raises(TypeError, match="expected str"):
        instance.call(INTERFACE, "encode", 5, True)
    with pytest.raises(TypeError, match="expected 2 arguments"):
        instance.call(INTERFACE, "encode", "x")
    assert instance.call(INTERFACE, "count", "abc", True).value == 3  # the instance is still usable


def test_files_that_are_not_components_are_refused(runtime: Runtime, tmp_path: Path) -> None:
    text = tmp_path / "notes.wasm"
    text.write_text("hello")
    with pytest.raises(ComponentLoadError, match="not a WebAssembly binary"):
        runtime.load(text)
    module = tmp_path / "core.wasm"
    module.write_bytes(b"\0asm\x01\0\0\0")  # the smallest valid core module
    with pytest.raises(ComponentLoadError, match="core WebAssembly module, not a component"):
        runtime.load(module)
    with pytest.raises(ComponentLoadError, match="cannot read component"):
        runtime.load(tmp_path / "missing.wasm")


def test_a_compiled_component_loads_from_the_cache(runtime: Runtime) -> None:
    """A second runtime (a restarted host) maps the kept AOT artefact instead of compiling again."""
    path = build_test_component("misbehaving")
    runtime.load(path)
    compiled = runtime.config.cache_dir / "compiled"
    before = {p.name: p.stat().st_mtime_ns for p in compiled.iterdir()}
    again = Runtime(runtime.config)
    try:
        assert TokenizerComponent(again.load(path)).encode("ok") == list(b"ok")
    finally:
        again.close()
    assert {p.name: p.stat().st_mtime_ns for p in compiled.iterdir()} == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the page cache with mincore(2)")
def test_a_kept_artefact_is_read_into_the_page_cache_before_it_is_mapped() -> None:
    """So that readahead caches it in large folios, not faults one page at a time (`page_cache`)."""
    config = RuntimeConfig(cache_dir=BUILD_DIR / "test-page-cache")
    shutil.rmtree(config.cache_dir, ignore_errors=True)
    path = build_test_component("misbehaving")
    compiling = Runtime(config)
    compiling.load(path)  # compiles, writes the artefact and maps it
    compiling.close()
    artefact = compiling.artefact_path(path)
    del compiling
    gc.collect()  # frees the component, which unmaps the artefact: mapped pages are not evicted
    evict(artefact)
    if cached_fraction(artefact) > 0.05:
        pytest.skip(f"this filesystem keeps {artefact} cached after POSIX_FADV_DONTNEED")
    restarted = Runtime(config)
    try:
        restarted.load(path)
        assert cached_fraction(artefact) > 0.99  # 0.43 when wasmtime faults it in itself
    finally:
        restarted.close()


def test_pools_refill_only_while_no_request_holds_an_instance(runtime: Runtime) -> None:
    """Preparing instances competes with requests for the cores, so a pool that is not
    empty waits for a gap: an instance taken by a request is replaced after it lets go."""
    loaded = runtime.load(build_test_component("misbehaving"))
    warmed: list[float] = []
    loaded.prepare(2, warm_up=lambda instance: warmed.append(time.monotonic()))
    try:
        _wait_for(lambda: len(warmed) == 2)
        with loaded.instantiate() as instance:
            time.sleep(0.3)  # the pool's thread is free to run now, and must wait
            assert instance.call(INTERFACE, "count", "abc", True).value == 3
            released = time.monotonic()
        _wait_for(lambda: len(warmed) == 3)
    finally:
        loaded.prepare(0)
    assert warmed[2] > released


def _wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_prepared_instances_are_fresh_and_used_once(runtime: Runtime) -> None:
    """Instances made ahead of time are handed out once each, in their initial state."""
    loaded = runtime.load(build_test_component("misbehaving"))
    warmed: list[object] = []
    loaded.prepare(2, warm_up=lambda instance: warmed.append(instance.call(INTERFACE, "count", "warm", True)))
    try:
        first, second = loaded.instantiate(), loaded.instantiate()
        assert first is not second and first.store is not second.store
        with pytest.raises(MemoryLimitExceeded):
            TokenizerSession(first).encode("oom")  # fills the module-level HOARD, then dies
        assert TokenizerSession(second).encode("ok") == list(b"ok")  # untouched by the first
        for _ in range(5):  # the pool refills, and falls back to instantiating when it lags
            with loaded.instantiate() as instance:
                assert instance.call(INTERFACE, "count", "abc", True).value == 3
        assert all(w.value == 4 for w in warmed)
    finally:
        loaded.prepare(0)
