"""The PoP's component store: what it accepts, versions, activation, and what survives restarts and crashes.

Most tests upload tiny components made from WAT text: real component binaries that
compile in milliseconds. The built ones (gpt2, rag) take ~16 s each to compile into a
store's fresh blob path, so each is uploaded once.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import tokenizers
import wasmtime

from edgepop.config import RuntimeConfig
from edgepop.registry import (
    BadName,
    ComponentStore,
    ComponentTooLarge,
    InvalidComponent,
    NoActiveVersion,
    NothingToRollBackTo,
    RegistryError,
    UnknownComponent,
    UnknownVersion,
    Version,
)
from edgepop.runtime import Runtime
from edgepop.tokenizer import INTERFACE as TOKENIZER
from edgepop.tokenizer import TokenizerComponent

from support import component_path, tokenizer_json

TOKENIZER_WORLD = "edge:ai/tokenizer-component@0.2.0"
RAG_WORLD = "edge:ai/rag-component@0.2.0"


def tiny(n: int = 1, export: str = TOKENIZER, imports: tuple[str, ...] = ()) -> bytes:
    """A component exporting `export` with one function `count` that returns `n`, importing `imports`."""
    imported = "".join(f'(import "{name}" (instance (export "f" (func (result u32)))))' for name in imports)
    return bytes(wasmtime.wat2wasm(f"""
        (component {imported}
          (core module $m (func (export "f") (result i32) i32.const {n}))
          (core instance $i (instantiate $m))
          (func $count (result u32) (canon lift (core func $i "f")))
          (instance $api (export "count" (func $count)))
          (export "{export}" (instance $api)))
    """))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def count(runtime: Runtime, path: Path) -> int:
    """What the tiny component at `path` returns, from a fresh instance."""
    with runtime.load(path).instantiate() as instance:
        return instance.call(TOKENIZER, "count")


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    # A cache of its own: the stores' blob paths are new on every run, so build/cache would only grow.
    rt = Runtime(RuntimeConfig(cache_dir=tmp_path_factory.mktemp("cache")))
    yield rt
    rt.close()


@pytest.fixture
def store(tmp_path: Path, runtime: Runtime) -> Iterator[ComponentStore]:
    s = ComponentStore(tmp_path / "store", runtime)
    yield s
    s.close()


def reopen(store: ComponentStore) -> ComponentStore:
    """The store as a restarted PoP opens it."""
    store.close()
    return ComponentStore(store.root, store.runtime)


def test_a_built_tokenizer_is_stored_by_sha256_activated_listed_and_serves(
    store: ComponentStore, runtime: Runtime
) -> None:
    data = component_path("gpt2").read_bytes()
    expected = tokenizers.Tokenizer.from_file(str(tokenizer_json("gpt2"))).encode("Hello, edge!").ids
    compiled = runtime.config.cache_dir / "compiled"
    artefacts = set(compiled.glob("*.cwasm")) if compiled.exists() else set()

    version = store.upload("gpt2", data)

    assert (version.sha256, version.size, version.world, version.active) == (sha(data), len(data), TOKENIZER_WORLD, True)
    assert store.names() == ["gpt2"]
    assert store.versions("gpt2") == [version] and store.active("gpt2") == version
    path = store.path(version.sha256)
    assert path == store.root / "blobs" / f"{sha(data)}.wasm" and path.read_bytes() == data
    assert len(set(compiled.glob("*.cwasm")) - artefacts) == 1  # compiled ahead, through the runtime's cache
    served = TokenizerComponent(runtime.load(path))
    assert served.encode("Hello, edge!") == expected

    # A restarted PoP loads the cached artefact; then the name is deleted while both are loaded.
    restarted = Runtime(runtime.config)
    try:
        from_artefact = TokenizerComponent(restarted.load(path))
        store.delete("gpt2")
        assert not path.exists()
        assert served.encode("Hello, edge!") == expected  # a fresh instance of each, after the file is gone
        assert from_artefact.encode("Hello, edge!") == expected
    finally:
        restarted.close()


def test_a_built_rag_component_is_accepted_under_the_rag_world(store: ComponentStore) -> None:
    data = component_path("rag").read_bytes()
    version = store.upload("rag", data)
    assert version.world == RAG_WORLD and version.sha256 == sha(data)
    assert store.active("rag") == version


def test_a_tiny_component_importing_the_rag_capabilities_is_a_rag_component(store: ComponentStore) -> None:
    data = tiny(export="edge:ai/retriever@0.2.0", imports=("edge:ai/chunks@0.2.0", "edge:ai/tokenizer@0.2.0"))
    assert store.upload("rag", data).world == RAG_WORLD


def test_uploading_identical_bytes_again_adds_no_version(store: ComponentStore) -> None:
    a, b = tiny(1), tiny(2)
    first = store.upload("model", a)
    store.upload("model", b)
    assert store.active("model").sha256 == sha(b)

    again = store.upload("model", a)
    assert again == first  # the same version, uploaded_at included, and active again
    assert [v.sha256 for v in store.versions("model")] == [sha(a), sha(b)]
    assert store.upload("model", b, activate=False).active is False
    assert store.active("model").sha256 == sha(a)
    assert files(store.root / "blobs") == sorted([f"{sha(a)}.wasm", f"{sha(b)}.wasm"])


def test_an_upload_not_activated_leaves_the_active_version(store: ComponentStore) -> None:
    store.upload("model", tiny(1), activate=False)
    with pytest.raises(NoActiveVersion, match="'model' has no active version"):
        store.active("model")
    with pytest.raises(NothingToRollBackTo, match="'model' has no active version to roll back from"):
        store.rollback("model")
    store.upload("model", tiny(2))
    store.upload("model", tiny(3), activate=False)
    assert store.active("model").sha256 == sha(tiny(2))
    assert [v.active for v in store.versions("model")] == [False, True, False]


@pytest.mark.parametrize("data", [b"\0asm\x01\0\0\0", bytes(wasmtime.wat2wasm("(module (func (export \"f\")))"))])
def test_a_core_module_is_refused_as_a_core_module(store: ComponentStore, data: bytes) -> None:
    with pytest.raises(InvalidComponent, match="'model' is a core module, not a component"):
        store.upload("model", data)
    assert store.names() == [] and files(store.root / "blobs") == []


def test_random_bytes_are_refused(store: ComponentStore) -> None:
    noise = random.Random(0).randbytes(4096)
    with pytest.raises(InvalidComponent, match="not a WebAssembly binary"):
        store.upload("model", noise)
    with pytest.raises(InvalidComponent, match="'model' is not a valid component: it does not compile: "):
        store.upload("model", b"\0asm\x0d\0\x01\0" + noise)  # a component's preamble, then noise
    assert store.names() == [] and files(store.root / "blobs") == []


def test_an_upload_over_the_size_limit_is_refused_with_both_sizes(tmp_path: Path, runtime: Runtime) -> None:
    data = tiny()
    small = ComponentStore(tmp_path / "small", runtime, max_bytes=len(data) - 1)
    try:
        with pytest.raises(ComponentTooLarge, match=f"is {len(data)} bytes .* over the limit of {len(data) - 1} bytes"):
            small.upload("model", data)
        assert small.names() == []
    finally:
        small.close()
    exact = ComponentStore(tmp_path / "exact", runtime, max_bytes=len(data))
    try:
        assert exact.upload("model", data).size == len(data)
    finally:
        exact.close()


def test_a_component_of_no_edgepop_world_is_refused(store: ComponentStore) -> None:
    with pytest.raises(InvalidComponent, match="targets none of edgepop's worlds: it exports edge:bench/boundary@0.1.0"):
        store.upload("bench", tiny(export="edge:bench/boundary@0.1.0"))
    assert store.names() == [] and files(store.root / "blobs") == []


@pytest.mark.parametrize("imported", [
    "edge:ai/chunks@0.2.0",  # a rag-component's capability, not a tokenizer's
    "wasi:http/outgoing-handler@0.2.0",  # the network
    "wasi:random/random@0.3.0",  # not WASI 0.2
])
def test_an_import_beyond_wasi_and_the_world_is_refused(store: ComponentStore, imported: str) -> None:
    with pytest.raises(InvalidComponent, match=f"imports what its world {TOKENIZER_WORLD} does not provide: {imported} "):
        store.upload("model", tiny(imports=("wasi:random/random@0.2.0", imported)))
    assert store.names() == []


def test_wasi_imports_are_accepted(store: ComponentStore) -> None:
    assert store.upload("model", tiny(imports=("wasi:random/random@0.2.0",))).world == TOKENIZER_WORLD


@pytest.mark.parametrize("name", ["", "Llama", "../etc", "a/b", "-x", ".hidden", "a" * 65, "model\n", "mödel"])
def test_a_bad_name_is_refused(store: ComponentStore, name: str) -> None:
    with pytest.raises(BadName, match="bad component name"):
        store.upload(name, tiny())
    assert store.names() == [] and files(store.root / "names") == []


def test_rollback_goes_back_through_activations_or_to_a_given_version(store: ComponentStore) -> None:
    v1, v2, v3 = (store.upload("model", tiny(n)).sha256 for n in (1, 2, 3))
    assert store.rollback("model").sha256 == v2
    assert store.rollback("model").sha256 == v1
    with pytest.raises(NothingToRollBackTo, match=f"'model' had no active version before {v1[:12]}"):
        store.rollback("model")
    assert store.rollback("model", to=v3).sha256 == v3
    assert store.rollback("model").sha256 == v1  # the one active before v3
    assert store.activate("model", v2) == Version(v2, len(tiny(2)), store.versions("model")[1].uploaded_at,
                                                   TOKENIZER_WORLD, active=True)
    assert [v.active for v in store.versions("model")] == [False, True, False]


def test_unknown_names_and_versions_are_refused(store: ComponentStore) -> None:
    v1 = store.upload("model", tiny(1)).sha256
    unknown = sha(b"never uploaded")
    with pytest.raises(UnknownVersion, match=f"'model' has no version '{unknown}' \\(its versions: {v1[:12]}\\)"):
        store.activate("model", unknown)
    with pytest.raises(UnknownVersion):
        store.rollback("model", to=unknown)
    with pytest.raises(UnknownVersion, match="no component in this store has version"):
        store.path(unknown)
    for call in (store.versions, store.active, store.delete, store.rollback, lambda n: store.activate(n, v1)):
        with pytest.raises(UnknownComponent, match="no component is named 'other'"):
            call("other")
    assert store.active("model").sha256 == v1


def test_delete_removes_the_name_and_the_blobs_no_other_name_uses(store: ComponentStore) -> None:
    shared, own = tiny(1), tiny(2)
    store.upload("a", shared)
    store.upload("b", shared)
    store.upload("b", own)

    store.delete("b")
    assert store.names() == ["a"]
    assert files(store.root / "blobs") == [f"{sha(shared)}.wasm"]
    assert store.path(sha(shared)).read_bytes() == shared
    with pytest.raises(UnknownVersion):
        store.path(sha(own))

    store.delete("a")
    assert store.names() == [] and files(store.root / "blobs") == [] and files(store.root / "names") == []
    store = reopen(store)
    assert store.names() == []


def test_a_restarted_store_sees_the_same_state(store: ComponentStore, runtime: Runtime) -> None:
    a1, a2, a3 = (store.upload("a", tiny(n)).sha256 for n in (1, 2, 3))
    store.upload("b", tiny(4), activate=False)
    store.rollback("a", to=a1)
    before = {name: store.versions(name) for name in store.names()}

    store = reopen(store)
    assert {name: store.versions(name) for name in store.names()} == before
    assert count(runtime, store.path(store.active("a").sha256)) == 1
    assert store.rollback("a").sha256 == a3  # the activations came back too
    with pytest.raises(NoActiveVersion):
        store.active("b")


def test_a_directory_is_open_in_one_store_at_a_time(store: ComponentStore, runtime: Runtime) -> None:
    with pytest.raises(RegistryError, match="is open in another component store"):
        ComponentStore(store.root, runtime)
    store.close()
    ComponentStore(store.root, runtime).close()


def test_a_failed_metadata_write_leaves_the_active_version_active_and_loadable(
    store: ComponentStore, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = store.upload("model", tiny(1))
    staged = store.upload("model", tiny(2), activate=False)
    names = store.root / "names"
    replace = os.replace

    def crash_on_metadata(src: str, dst: str | Path) -> None:
        if Path(dst).parent == names:
            raise OSError("disk gone")
        replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_metadata)
    for interrupted in (lambda: store.upload("model", tiny(3)), lambda: store.activate("model", staged.sha256),
                        lambda: store.rollback("model", to=staged.sha256), lambda: store.upload("other", tiny(4))):
        with pytest.raises(OSError, match="disk gone"):
            interrupted()
    monkeypatch.undo()

    assert store.names() == ["model"] and store.versions("model") == [old, staged]
    assert store.active("model") == old
    assert files(names) == ["model.json"]  # no temporary file left
    assert files(store.root / "blobs") == sorted(f"{v.sha256}.wasm" for v in (old, staged))  # nor unrecorded blobs
    store = reopen(store)
    assert store.versions("model") == [old, staged] and store.active("model") == old
    assert count(runtime, store.path(old.sha256)) == 1


def test_what_a_crash_leaves_behind_is_cleaned_up_at_open(store: ComponentStore, runtime: Runtime) -> None:
    old = store.upload("model", tiny(1))
    blobs, names = store.root / "blobs", store.root / "names"
    store.close()
    # A crash while writing a blob, after writing one, and while replacing the metadata:
    unrecorded = tiny(2)
    (blobs / f".{sha(unrecorded)}.wasm.x1y2z3.tmp").write_bytes(unrecorded[:50])
    (blobs / f"{sha(unrecorded)}.wasm").write_bytes(unrecorded)
    (names / ".model.json.a1b2c3.tmp").write_text('{"format": 1, "versions": [{"sha2')

    store = ComponentStore(store.root, runtime)
    try:
        assert store.versions("model") == [old] and store.active("model") == old
        assert files(blobs) == [f"{old.sha256}.wasm"] and files(names) == ["model.json"]
        assert count(runtime, store.path(old.sha256)) == 1
    finally:
        store.close()


def test_corrupt_metadata_is_reported_with_its_file(store: ComponentStore, runtime: Runtime) -> None:
    store.upload("model", tiny(1))
    store.close()
    metadata = store.root / "names" / "model.json"
    metadata.write_text('{"format": 1, "versions": []')
    with pytest.raises(RegistryError, match=f"{metadata} is not a component store's metadata"):
        ComponentStore(store.root, runtime)


def test_deleting_the_only_name_of_a_blob_an_upload_is_validating_keeps_the_blob(
    store: ComponentStore, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tiny(5)
    store.upload("a", data)
    validating, deleted = threading.Event(), threading.Event()
    load = runtime.load

    def load_after_the_delete(path: Path) -> object:  # the real load, once "a" is gone
        validating.set()
        deleted.wait(10)
        return load(path)

    monkeypatch.setattr(runtime, "load", load_after_the_delete)
    uploading = threading.Thread(target=store.upload, args=("b", data))
    uploading.start()
    assert validating.wait(10)
    store.delete("a")
    deleted.set()
    uploading.join()
    monkeypatch.undo()

    assert store.names() == ["b"]
    assert count(runtime, store.path(sha(data))) == 5


def test_concurrent_uploads_leave_a_consistent_history(store: ComponentStore) -> None:
    distinct = [tiny(n) for n in range(8)]
    same = tiny(100)
    start = threading.Barrier(len(distinct) + 4)
    errors: list[BaseException] = []

    def upload(name: str, data: bytes) -> None:
        start.wait()
        try:
            store.upload(name, data)
        except BaseException as e:  # noqa: BLE001 — reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=upload, args=("model", data)) for data in distinct]
    threads += [threading.Thread(target=upload, args=("same", same)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    versions = store.versions("model")
    assert sorted(v.sha256 for v in versions) == sorted(sha(d) for d in distinct)
    assert sum(v.active for v in versions) == 1 and store.active("model") in versions
    assert [v.sha256 for v in store.versions("same")] == [sha(same)]
    assert len(files(store.root / "blobs")) == len(distinct) + 1
    listed = {name: store.versions(name) for name in store.names()}
    store = reopen(store)
    assert {name: store.versions(name) for name in store.names()} == listed
