"""The host's component-value conversions (edgepop.canonical), checked against wasmtime.

The types are real: a component declared in WAT imports one function per case, and
wasmtime parses and validates it, so they are the types wasmtime hands the host. Values
go through wasmtime's own deep copy of what edgepop encodes (what a host function's
result goes through), and through wasmtime-py's conversions, in both directions.
"""

from __future__ import annotations

import ctypes
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wasmtime import Engine, Store, _ffi as ffi
from wasmtime.component import Component, Record, Variant

from edgepop.canonical import Err, Ok, Val, encoder, lifter

WAT = """
(component
  (type $chunk' (record (field "id" u64) (field "path" string) (field "qualified-name" (option string))
                        (field "start-line" u32) (field "text" string)))
  (import "chunk" (type $chunk (eq $chunk')))
  (type $error' (variant (case "empty-text") (case "internal" string)))
  (import "error" (type $error (eq $error')))
  (type $numbers' (record (field "b" bool) (field "s8" s8) (field "u8" u8) (field "s16" s16) (field "u16" u16)
                          (field "s32" s32) (field "u32" u32) (field "s64" s64) (field "u64" u64)
                          (field "f32" f32) (field "f64" f64)))
  (import "numbers" (type $numbers (eq $numbers')))
  (type $color' (enum "red" "green"))
  (import "color" (type $color (eq $color')))
  (type $access' (flags "read" "write"))
  (import "access" (type $access (eq $access')))
  (import "numbers-in" (func (param "x" $numbers)))
  (import "text-in" (func (param "x" string)))
  (import "bytes-in" (func (param "x" (list u8))))
  (import "ids-in" (func (param "x" (list u32))))
  (import "scores-in" (func (param "x" (list f32))))
  (import "strings-in" (func (param "x" (list string))))
  (import "chunks-in" (func (param "x" (list (option $chunk)))))
  (import "embed-in" (func (param "x" (result (error $error)))))
  (import "search-in" (func (param "x" (result (list u64) (error $error)))))
  (import "lift-only-in" (func (param "x" (tuple char $color $access))))
)
"""


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="module")
def types(engine: Engine) -> dict:
    """The parameter type of each imported function, by the function's name."""
    imports = Component(engine, WAT).type.imports(engine)
    return {name: item.ty.params[0][1] for name, item in imports.items() if name.endswith("-in")}


def through_wasmtime(ty, value):
    """`value` encoded by edgepop, deep-copied by wasmtime into memory it owns, and lifted back."""
    keep: list[bytes] = []
    encoded = encoder(ty)(value, keep)
    copy = Val()
    source = (ctypes.c_char * len(encoded)).from_buffer_copy(encoded)
    # The clone reads what `encoded` points to (held by `keep`) and allocates its own.
    ffi.wasmtime_component_val_clone(ctypes.cast(source, ctypes.POINTER(Val)), ctypes.byref(copy))
    del keep
    try:
        return lifter(ty)(ctypes.string_at(ctypes.addressof(copy), ctypes.sizeof(Val)), 0)
    finally:
        ffi.wasmtime_component_val_delete(ctypes.byref(copy))


def record(**fields) -> Record:
    r = Record()
    for name, value in fields.items():
        setattr(r, name, value)
    return r


NUMBERS = record(b=True, s8=-128, u8=255, s16=-32768, u16=65535, s32=-2**31, u32=2**32 - 1,
                 s64=-2**63, u64=2**64 - 1, f32=0.5, f64=1e300)
CHUNK = record(id=7, path="json/decoder.py", qualified_name="JSONDecoder.raw_decode", start_line=12,
               text="def raw_decode(self, s, idx=0):\n    ...\n")

# (function, a value as edgepop gives and takes it)
ROUND_TRIPS = [
    ("numbers-in", NUMBERS),
    ("text-in", ""),
    ("text-in", "naïve 日本語 🙂\0 end"),
    ("bytes-in", bytes(range(256))),
    ("ids-in", list(range(0, 5000, 7)) + [2**32 - 1]),
    ("scores-in", [0.25, -1.5, 3.0]),
    ("strings-in", ["", "a", "ü" * 1000]),
    ("chunks-in", [CHUNK, None, record(id=0, path="", qualified_name=None, start_line=0, text="")]),
    ("chunks-in", []),
    ("embed-in", Ok(None)),
    ("embed-in", Err(Variant("empty-text"))),
    ("embed-in", Err(Variant("internal", "the model failed"))),
    ("search-in", Ok([3, 1, 2**64 - 1])),
]


@pytest.mark.parametrize(("function", "value"), ROUND_TRIPS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(ROUND_TRIPS)])
def test_a_value_wasmtime_copies_lifts_back_unchanged(types: dict, function: str, value) -> None:
    assert through_wasmtime(types[function], value) == value


def test_record_fields_may_come_from_a_dict_or_any_object(types: dict) -> None:
    class Chunk:
        def __init__(self) -> None:
            self.__dict__.update(vars(CHUNK))

    assert through_wasmtime(types["chunks-in"], [vars(CHUNK), Chunk()]) == [CHUNK, CHUNK]


# Values that wasmtime-py spells as edgepop does: numbers, strings, lists, records whose
# field names have no hyphen (wasmtime-py keeps the hyphen in the attribute's name).
SAME_SPELLING = [("numbers-in", NUMBERS), ("text-in", "naïve 日本語"), ("bytes-in", b"\x00\xff"),
                 ("ids-in", [1, 2, 3]), ("strings-in", ["a", "bc"])]


@pytest.mark.parametrize(("function", "value"), SAME_SPELLING, ids=[f for f, _ in SAME_SPELLING])
def test_edgepop_reads_what_wasmtime_py_writes_and_the_reverse(engine: Engine, types: dict, function: str,
                                                               value) -> None:
    ty = types[function]
    store = Store(engine)
    written = Val()
    ty.convert_to_c(store, value, ctypes.pointer(written))
    try:
        assert lifter(ty)(ctypes.string_at(ctypes.addressof(written), ctypes.sizeof(Val)), 0) == value
    finally:
        ffi.wasmtime_component_val_delete(ctypes.byref(written))
    keep: list[bytes] = []
    encoded = encoder(ty)(value, keep)
    copy = Val()
    ffi.wasmtime_component_val_clone(ctypes.cast(ctypes.c_char_p(encoded), ctypes.POINTER(Val)), ctypes.byref(copy))
    assert ty.convert_from_c(copy) == value  # wasmtime-py frees what it reads


def test_chars_enums_flags_and_tuples_are_lifted_as_wasmtime_py_writes_them(engine: Engine, types: dict) -> None:
    ty = types["lift-only-in"]
    written = Val()
    ty.convert_to_c(Store(engine), ("ß", "green", {"read", "write"}), ctypes.pointer(written))
    try:
        lifted = lifter(ty)(ctypes.string_at(ctypes.addressof(written), ctypes.sizeof(Val)), 0)
    finally:
        ffi.wasmtime_component_val_delete(ctypes.byref(written))
    assert lifted == ("ß", "green", {"read", "write"})


@pytest.mark.parametrize(("function", "value", "message"), [
    ("numbers-in", record(**{**vars(NUMBERS), "u8": 256}), "expected int for u8, got 256, out of its range"),
    ("numbers-in", record(**{**vars(NUMBERS), "s64": True}), "expected int for s64, got bool"),
    ("numbers-in", record(**{**vars(NUMBERS), "f32": 1}), "expected float for f32, got int"),
    ("numbers-in", record(**{**vars(NUMBERS), "f32": 1e300}), "expected float for f32, got 1e+300, out of its range"),
    ("numbers-in", record(**{**vars(NUMBERS), "b": 1}), "expected bool, got int"),
    ("text-in", b"bytes", "expected str, got bytes"),
    ("ids-in", [1, -1], "expected a list of 'I' numbers"),
    ("strings-in", "abc", "expected a list, got str"),
    ("embed-in", (), "expected Ok(...) or Err(...) for a result, got tuple"),
    ("embed-in", Err(Variant("no-such-case")), "expected a Variant with a tag of ['empty-text', 'internal']"),
])
def test_a_value_that_does_not_fit_its_type_is_refused_naming_why(types: dict, function: str, value,
                                                                    message: str) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        encoder(types[function])(value, [])


def test_a_missing_record_field_is_refused_naming_it(types: dict) -> None:
    with pytest.raises(KeyError, match="qualified_name"):
        encoder(types["chunks-in"])([{"id": 1, "path": "p", "start_line": 1, "text": ""}], [])


chunks = st.builds(
    record, id=st.integers(0, 2**64 - 1), path=st.text(), qualified_name=st.none() | st.text(),
    start_line=st.integers(0, 2**32 - 1), text=st.text(),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.none() | chunks, max_size=20))
def test_any_list_of_chunks_crosses_unchanged(types: dict, value: list) -> None:
    assert through_wasmtime(types["chunks-in"], value) == value
