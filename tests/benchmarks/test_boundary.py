"""Passing 5,000 token ids across the host<->guest boundary, three ways, side by side.

- `wasmtime-py`: `list<u32>` through wasmtime-py's own value conversion (per element).
- `bulk list`: `list<u32>` through edgepop's canonical module (one strided copy on the host;
  the componentize-py guest still converts per element).
- `packed`: WIT `packed-token-ids`, a string that crosses in one copy, unpacked on the host.
"""

from __future__ import annotations

import pytest

from edgepop.runtime import Instance, Runtime
from edgepop_tokenizer import packed_ids

from support import build_test_component

N = 5000
INTERFACE = "edge:bench/boundary@0.1.0"


@pytest.fixture(scope="module")
def instance() -> Instance:
    runtime = Runtime()
    loaded = runtime.load(build_test_component("boundary", world="boundary-bench"))
    yield loaded.instantiate()
    runtime.close()


def _raw_func(instance: Instance, name: str):
    return instance._instance.get_func(instance.store, instance.loaded.export_index(INTERFACE, name))


def test_call_overhead(benchmark, instance: Instance) -> None:
    benchmark.group = "boundary: 5,000 ids"
    assert benchmark(instance.call, INTERFACE, "nothing") == 0


def test_out_as_list_wasmtime_py(benchmark, instance: Instance) -> None:
    benchmark.group = "boundary: 5,000 ids"
    func = _raw_func(instance, "ids-list")

    def call() -> list[int]:
        ids = func(instance.store, N)
        func.post_return(instance.store)
        return ids

    assert len(benchmark(call)) == N


def test_out_as_list_bulk(benchmark, instance: Instance) -> None:
    benchmark.group = "boundary: 5,000 ids"
    assert len(benchmark(instance.call, INTERFACE, "ids-list", N)) == N


def test_out_packed(benchmark, instance: Instance) -> None:
    """Ids arrive as a u32 array: what a PoP forwards or counts without touching each id."""
    benchmark.group = "boundary: 5,000 ids"
    ids = benchmark(lambda: packed_ids.unpack_array(instance.call(INTERFACE, "ids-packed", N)))
    assert ids.tolist() == list(range(100_000, 100_000 + N))


def test_out_packed_as_python_list(benchmark, instance: Instance) -> None:
    """The same, then made into a list of Python ints (about 100 µs of int objects on its own)."""
    benchmark.group = "boundary: 5,000 ids"
    ids = benchmark(lambda: packed_ids.unpack(instance.call(INTERFACE, "ids-packed", N)))
    assert ids == list(range(100_000, 100_000 + N))


def test_in_as_list_wasmtime_py(benchmark, instance: Instance) -> None:
    benchmark.group = "boundary: 5,000 ids"
    func = _raw_func(instance, "take-list")
    ids = list(range(N))

    def call() -> int:
        n = func(instance.store, ids)
        func.post_return(instance.store)
        return n

    assert benchmark(call) == N


def test_in_as_list_bulk(benchmark, instance: Instance) -> None:
    benchmark.group = "boundary: 5,000 ids"
    assert benchmark(instance.call, INTERFACE, "take-list", list(range(N))) == N


def test_in_packed(benchmark, instance: Instance) -> None:
    benchmark.group = "boundary: 5,000 ids"
    ids = list(range(N))
    assert benchmark(lambda: instance.call(INTERFACE, "take-packed", packed_ids.pack(ids))) == N
