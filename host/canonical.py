"""Moving component-model values between Python and wasmtime's C API, fast.

wasmtime-py converts every value through per-element Python objects: a `list<u32>` of
5,000 token ids costs about 6 ms each way, more than tokenizing the text. The C API
hands lists over as arrays of `wasmtime_component_val_t` (a kind byte and a union, 32
bytes each), so a list of numbers can be read or written as one strided buffer copy.
This module compiles, once per function type, a lifter and an encoder for each value
type, with that bulk path for lists of numbers and plain per-value code for the rest.

A ctypes call costs about 2 µs on the machines measured here, so the conversions make as
few as they can. A lifter reads C memory with one copy per string or array and parses it
with `struct`. An encoder packs a value into the bytes of its C form, pointing at bytes
objects Python owns: wasmtime only reads the arguments of a call, and makes its own deep
copy of a host function's result in one call (`wasmtime_component_val_clone`). Built
with ctypes structures instead, one C allocation per string, record and field name, a
list of ten chunk records took 3x as long to lower (560 µs against 185 µs, measured).

The same conversions serve both directions: calling a component's exports
(`Signature.call`) and answering its imports with host functions (`define`).
"""

from __future__ import annotations

import array
import ctypes
import itertools
import struct
from ctypes import byref
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from wasmtime import WasmtimeError, _ffi as ffi
from wasmtime.component import (
    F32, F64, S8, S16, S32, S64, U8, U16, U32, U64,
    Bool, Char, EnumType, FlagsType, ListType, OptionType, Record, RecordType,
    Func, ResultType, String, TupleType, ValType, Variant, VariantType,
)
from wasmtime.component import FuncType, LinkerInstance

Val = ffi.wasmtime_component_val_t
# A lifter reads a value from a copy of C memory, at an offset. An encoder returns the 32
# bytes of a `wasmtime_component_val_t`; what they point to, it appends to a list that
# must outlive the value's use.
Lift = Callable[[bytes, int], Any]
Encode = Callable[[Any, list[bytes]], bytes]

T = TypeVar("T")


@dataclass(frozen=True)
class Ok(Generic[T]):
    """The `ok` case of a component `result`."""

    value: T


@dataclass(frozen=True)
class Err(Generic[T]):
    """The `err` case of a component `result`."""

    value: T


# A C value: a kind byte, then its payload from byte 8 on (a number, a byte vector, a
# (size, data) array, a pointer to a boxed value...). A record entry: a name, then a value.
_VAL_SIZE = ctypes.sizeof(Val)
_PAYLOAD_OFFSET = Val.of.offset
_ENTRY_SIZE = ctypes.sizeof(ffi.wasmtime_component_valrecord_entry)
_ENTRY_VAL_OFFSET = ffi.wasmtime_component_valrecord_entry.val.offset
_NAME_SIZE = ctypes.sizeof(ffi.wasm_byte_vec_t)
_PAIR = struct.Struct("<QQ")  # (size, data) of a byte vector or an array; (flag, pointer) of a result
_POINTER = struct.Struct("<Q")

_BOOL = ffi.WASMTIME_COMPONENT_BOOL.value
_STRING = ffi.WASMTIME_COMPONENT_STRING.value
_LIST = ffi.WASMTIME_COMPONENT_LIST.value
_RECORD = ffi.WASMTIME_COMPONENT_RECORD.value
_VARIANT = ffi.WASMTIME_COMPONENT_VARIANT.value
_OPTION = ffi.WASMTIME_COMPONENT_OPTION.value
_RESULT = ffi.WASMTIME_COMPONENT_RESULT.value

# Number types: (C API kind, struct format of the payload, whether Python holds it as a float).
_NUMBERS: dict[type, tuple[int, str, bool]] = {
    U8: (ffi.WASMTIME_COMPONENT_U8.value, "B", False),
    S8: (ffi.WASMTIME_COMPONENT_S8.value, "b", False),
    U16: (ffi.WASMTIME_COMPONENT_U16.value, "H", False),
    S16: (ffi.WASMTIME_COMPONENT_S16.value, "h", False),
    U32: (ffi.WASMTIME_COMPONENT_U32.value, "I", False),
    S32: (ffi.WASMTIME_COMPONENT_S32.value, "i", False),
    U64: (ffi.WASMTIME_COMPONENT_U64.value, "Q", False),
    S64: (ffi.WASMTIME_COMPONENT_S64.value, "q", False),
    F32: (ffi.WASMTIME_COMPONENT_F32.value, "f", True),
    F64: (ffi.WASMTIME_COMPONENT_F64.value, "d", True),
}


def _value_struct(payload: str) -> struct.Struct:
    """The layout of a whole C value with this payload: kind, padding, payload, padding."""
    layout = struct.Struct(f"<B{_PAYLOAD_OFFSET - 1}x{payload}")
    return struct.Struct(f"{layout.format}{_VAL_SIZE - layout.size}x")


_ARRAY_VALUE = _value_struct("QQ")  # a byte vector, a list, a record: (size, data)
_POINTER_VALUE = _value_struct("Q")  # an option: a pointer to the boxed payload, or NULL
_VARIANT_VALUE = _value_struct("QQQ")  # the case's name (size, data), a pointer to its payload
_RESULT_VALUE = _value_struct("?7xQ")  # is_ok, a pointer to the payload


# wasmtime_component_val_clone(src, dst): a deep copy that wasmtime allocates, and owns.
_val_clone = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(("wasmtime_component_val_clone", ffi.dll))


def lifter(ty: ValType) -> Lift:
    """A function that reads a value of type `ty` from C memory copied into bytes, at an offset."""
    number = _NUMBERS.get(type(ty))
    if number is not None:
        unpack = struct.Struct("<" + number[1]).unpack_from
        return lambda raw, at: unpack(raw, at + _PAYLOAD_OFFSET)[0]
    if isinstance(ty, Bool):
        return lambda raw, at: raw[at + _PAYLOAD_OFFSET] != 0
    if isinstance(ty, Char):
        code_point = struct.Struct("<I").unpack_from
        return lambda raw, at: chr(code_point(raw, at + _PAYLOAD_OFFSET)[0])
    if isinstance(ty, (String, EnumType)):
        return lambda raw, at: _text(raw, at + _PAYLOAD_OFFSET)
    if isinstance(ty, ListType):
        return _list_lifter(ty)
    if isinstance(ty, RecordType):
        fields = [(_python_name(name), lifter(field_ty)) for name, field_ty in ty.fields]

        def lift_record(raw: bytes, at: int) -> Record:
            size, data = _PAIR.unpack_from(raw, at + _PAYLOAD_OFFSET)
            entries = ctypes.string_at(data, size * _ENTRY_SIZE)
            record = Record()
            for i, (name, lift) in enumerate(fields):
                setattr(record, name, lift(entries, i * _ENTRY_SIZE + _ENTRY_VAL_OFFSET))
            return record

        return lift_record
    if isinstance(ty, TupleType):
        elements = [lifter(t) for t in ty.elements]

        def lift_tuple(raw: bytes, at: int) -> tuple[Any, ...]:
            size, data = _PAIR.unpack_from(raw, at + _PAYLOAD_OFFSET)
            values = ctypes.string_at(data, size * _VAL_SIZE)
            return tuple(lift(values, i * _VAL_SIZE) for i, lift in enumerate(elements))

        return lift_tuple
    if isinstance(ty, VariantType):
        cases = {name: (lifter(case_ty) if case_ty is not None else None) for name, case_ty in ty.cases}

        def lift_variant(raw: bytes, at: int) -> Variant:
            tag = _text(raw, at + _PAYLOAD_OFFSET)
            lift = cases[tag]
            return Variant(tag, _unbox(lift, _POINTER.unpack_from(raw, at + _PAYLOAD_OFFSET + _NAME_SIZE)[0]))

        return lift_variant
    if isinstance(ty, OptionType):
        lift_some = lifter(ty.payload)

        def lift_option(raw: bytes, at: int) -> Any:
            return _unbox(lift_some, _POINTER.unpack_from(raw, at + _PAYLOAD_OFFSET)[0])

        return lift_option
    if isinstance(ty, ResultType):
        lift_ok = lifter(ty.ok) if ty.ok is not None else None
        lift_err = lifter(ty.err) if ty.err is not None else None

        def lift_result(raw: bytes, at: int) -> Ok[Any] | Err[Any]:
            is_ok, payload = _PAIR.unpack_from(raw, at + _PAYLOAD_OFFSET)
            if is_ok & 0xFF:
                return Ok(_unbox(lift_ok, payload))
            return Err(_unbox(lift_err, payload))

        return lift_result
    if isinstance(ty, FlagsType):

        def lift_flags(raw: bytes, at: int) -> set[str]:
            size, data = _PAIR.unpack_from(raw, at + _PAYLOAD_OFFSET)
            names = ctypes.string_at(data, size * _NAME_SIZE)
            return {_text(names, i * _NAME_SIZE) for i in range(size)}

        return lift_flags
    raise TypeError(f"edgepop cannot lift component values of type {type(ty).__name__}")


def _text(raw: bytes, at: int) -> str:
    """The UTF-8 text of the byte vector at `at`, in one copy."""
    size, data = _PAIR.unpack_from(raw, at)
    return ctypes.string_at(data, size).decode("utf-8") if size else ""


def _unbox(lift: Lift | None, pointer: int) -> Any:
    """The value a boxed payload pointer points to (None for none)."""
    return lift(ctypes.string_at(pointer, _VAL_SIZE), 0) if lift is not None and pointer else None


def _list_lifter(ty: ListType) -> Lift:
    number = _NUMBERS.get(type(ty.element))
    if number is not None:
        typecode = number[1]
        itemsize = struct.calcsize(typecode)
        stride, start = _VAL_SIZE // itemsize, _PAYLOAD_OFFSET // itemsize

        def lift_numbers(raw: bytes, at: int) -> list[Any] | bytes:
            size, data = _PAIR.unpack_from(raw, at + _PAYLOAD_OFFSET)
            if size == 0:
                return b"" if typecode == "B" else []
            values = memoryview(ctypes.string_at(data, size * _VAL_SIZE)).cast(typecode)[start::stride]
            return values.tobytes() if typecode == "B" else values.tolist()

        return lift_numbers
    lift_element = lifter(ty.element)

    def lift_list(raw: bytes, at: int) -> list[Any]:
        size, data = _PAIR.unpack_from(raw, at + _PAYLOAD_OFFSET)
        values = ctypes.string_at(data, size * _VAL_SIZE)
        return [lift_element(values, i * _VAL_SIZE) for i in range(size)]

    return lift_list


def encoder(ty: ValType) -> Encode:
    """A function that encodes a Python value of type `ty` as a C value (32 bytes).

    What the value points to (strings, arrays, boxed payloads) are bytes objects the
    function appends to `keep`: they must outlive the C value's use. A value that does
    not fit the type raises TypeError.
    """
    number = _NUMBERS.get(type(ty))
    if number is not None:
        kind, payload, is_float = number
        return _scalar(_value_struct(payload), kind, float if is_float else int, type(ty).__name__.lower())
    if isinstance(ty, Bool):
        return _scalar(_value_struct("?"), _BOOL, bool, "bool")
    if isinstance(ty, String):

        def encode_string(value: Any, keep: list[bytes]) -> bytes:
            if not isinstance(value, str):
                raise TypeError(f"expected str, got {type(value).__name__}")
            data = value.encode("utf-8")
            return _ARRAY_VALUE.pack(_STRING, len(data), _held(data, keep))

        return encode_string
    if isinstance(ty, ListType):
        return _list_encoder(ty)
    if isinstance(ty, OptionType):
        encode_some = encoder(ty.payload)
        none = _POINTER_VALUE.pack(_OPTION, 0)

        def encode_option(value: Any, keep: list[bytes]) -> bytes:
            if value is None:
                return none
            return _POINTER_VALUE.pack(_OPTION, _boxed(encode_some, value, keep))

        return encode_option
    if isinstance(ty, RecordType):
        return _record_encoder(ty)
    if isinstance(ty, VariantType):
        # Per case: its name's bytes (which the C value points into), the payload's encoder.
        cases = {name: (name.encode("utf-8"), encoder(case_ty) if case_ty is not None else None)
                 for name, case_ty in ty.cases}

        def encode_variant(value: Any, keep: list[bytes]) -> bytes:
            if not isinstance(value, Variant) or value.tag not in cases:
                raise TypeError(f"expected a Variant with a tag of {sorted(cases)}, got {value!r}")
            tag, encode_payload = cases[value.tag]
            payload = _boxed(encode_payload, value.payload, keep)
            return _VARIANT_VALUE.pack(_VARIANT, len(tag), _address(tag), payload)

        return encode_variant
    if isinstance(ty, ResultType):
        encode_ok = encoder(ty.ok) if ty.ok is not None else None
        encode_err = encoder(ty.err) if ty.err is not None else None
        def encode_result(value: Any, keep: list[bytes]) -> bytes:
            if not isinstance(value, (Ok, Err)):
                raise TypeError(f"expected Ok(...) or Err(...) for a result, got {type(value).__name__}")
            is_ok = isinstance(value, Ok)
            return _RESULT_VALUE.pack(_RESULT, is_ok, _boxed(encode_ok if is_ok else encode_err, value.value, keep))

        return encode_result
    raise TypeError(f"edgepop cannot lower component values of type {type(ty).__name__}")


def _scalar(layout: struct.Struct, kind: int, python_type: type, name: str) -> Encode:
    """An encoder for a number or a bool: the Python type checked (a bool is not an int here), the range too."""
    expected = "bool" if python_type is bool else f"{python_type.__name__} for {name}"

    def encode(value: Any, keep: list[bytes]) -> bytes:
        if not isinstance(value, python_type) or (python_type is not bool and isinstance(value, bool)):
            raise TypeError(f"expected {expected}, got {type(value).__name__}")
        try:
            return layout.pack(kind, value)
        except (struct.error, OverflowError):  # an int out of range; a float too large for f32
            raise TypeError(f"expected {expected}, got {value!r}, out of its range") from None

    return encode


def _address(data: bytes) -> int:
    """Where the contents of `data` are, valid while `data` lives.

    CPython stores a bytes object's contents inline, at a fixed offset from the object's
    address, which is its `id`; the bytes never move. Checked below, at import.
    """
    return id(data) + _BYTES_DATA_OFFSET


def _held(data: bytes, keep: list[bytes]) -> int:
    """The address of `data`, which `keep` now holds so that the address stays valid."""
    keep.append(data)
    return _address(data)


_BYTES_DATA_OFFSET = bytes.__basicsize__ - 1  # PyBytesObject's ob_sval, after its header
_probe = b"edgepop"
if ctypes.string_at(_address(_probe), len(_probe)) != _probe:
    raise ImportError("edgepop.canonical needs CPython's layout of bytes objects")


def _boxed(encode: Encode | None, payload: Any, keep: list[bytes]) -> int:
    """The address of an option's or a case's payload, encoded on its own (0, NULL, for no payload)."""
    return _held(encode(payload, keep), keep) if encode is not None else 0


def _record_encoder(ty: RecordType) -> Encode:
    # The WIT names' bytes, which the entries' name vectors point into (the encoder holds
    # them). Per field: the name's C byte vector, the Python name, the encoder. An entry is
    # the name's vector, then the value.
    wit_fields = ty.fields
    names = [name.encode("utf-8") for name, _ in wit_fields]
    fields = [(_PAIR.pack(len(wit_name), _address(wit_name)), _python_name(name), encoder(field_ty))
              for wit_name, (name, field_ty) in zip(names, wit_fields)]

    def encode_record(value: Any, keep: list[bytes]) -> bytes:
        field_of = value.__getitem__ if isinstance(value, dict) else value.__getattribute__
        entries = b"".join([part for name, key, encode in fields for part in (name, encode(field_of(key), keep))])
        return _ARRAY_VALUE.pack(_RECORD, len(names), _held(entries, keep))

    return encode_record


def _list_encoder(ty: ListType) -> Encode:
    number = _NUMBERS.get(type(ty.element))
    if number is not None:
        kind, typecode, _ = number
        itemsize = struct.calcsize(typecode)
        stride, start = _VAL_SIZE // itemsize, _PAYLOAD_OFFSET // itemsize

        def encode_numbers(values: Any, keep: list[bytes]) -> bytes:
            """Kinds and payloads laid out in one buffer: no Python object per element."""
            try:
                payload = array.array(typecode, values)
            except (TypeError, OverflowError) as e:
                raise TypeError(f"expected a list of {typecode!r} numbers: {e}") from None
            size = len(payload)
            buffer = bytearray(size * _VAL_SIZE)
            view = memoryview(buffer)
            view[0::_VAL_SIZE] = bytes([kind]) * size
            view.cast(typecode)[start::stride] = payload
            return _ARRAY_VALUE.pack(_LIST, size, _held(bytes(buffer), keep))

        return encode_numbers
    encode_element = encoder(ty.element)

    def encode_list(values: Any, keep: list[bytes]) -> bytes:
        if not isinstance(values, (list, tuple)):
            raise TypeError(f"expected a list, got {type(values).__name__}")
        elements = b"".join([encode_element(value, keep) for value in values])
        return _ARRAY_VALUE.pack(_LIST, len(values), _held(elements, keep))

    return encode_list


def _python_name(wit_name: str) -> str:
    """Record fields as Python spells them: `model-name` becomes `model_name`."""
    return wit_name.replace("-", "_")


_NO_PARAMS = (Val * 1)()  # what a call without arguments points wasmtime at (it reads none of it)


class Signature:
    """A component function type with its conversions compiled once, shared by all instances.

    `result<T, E>` values come back as `Ok(T)` or `Err(E)`.
    """

    def __init__(self, params: list[tuple[str, ValType]], result: ValType | None) -> None:
        self.param_names = [name for name, _ in params]
        self._encoders = [encoder(ty) for _, ty in params]
        self._lift = lifter(result) if result is not None else None

    def call(self, store: Any, func: Func, *args: Any) -> Any:
        """Call `func` (of this signature) in `store`; wasmtime errors and traps raise WasmtimeError."""
        if len(args) != len(self._encoders):
            raise TypeError(f"expected {len(self._encoders)} arguments ({', '.join(self.param_names)}), got {len(args)}")
        keep: list[bytes] = []  # what the arguments point to; wasmtime only reads them
        encoded = b"".join([encode(value, keep) for encode, value in zip(self._encoders, args)])
        params = (Val * len(args)).from_buffer_copy(encoded) if args else _NO_PARAMS
        result = Val()
        error = ffi.wasmtime_component_func_call(
            byref(func._func), store._context(), params, len(args),
            byref(result) if self._lift else None, 1 if self._lift else 0,
        )
        if error:
            raise WasmtimeError._from_ptr(error)
        try:
            return self._lift(bytes(result), 0) if self._lift else None
        finally:
            if self._lift:
                ffi.wasmtime_component_val_delete(byref(result))
            func.post_return(store)


class _HostFunction:
    """A Python function serving a component import; its conversions are compiled on the first call,
    from the import's type as the component declares it."""

    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        self.name = name
        self.function = function
        self.lifts: list[Lift] | None = None
        self.encode: Encode | None = None

    def serve(self, ty: Any, args: Any, nargs: int, results: Any) -> None:
        if self.lifts is None:
            func_type = FuncType._from_ptr(ty, owner=self)
            self.encode = encoder(func_type.result) if func_type.result is not None else None
            self.lifts = [lifter(param) for _, param in func_type.params]
        # The arguments stay owned by wasmtime, which frees them after the call.
        raw = ctypes.string_at(args, nargs * _VAL_SIZE) if nargs else b""
        value = self.function(*(lift(raw, i * _VAL_SIZE) for i, lift in enumerate(self.lifts)))
        if self.encode is not None:
            # wasmtime frees what is in its result slot: it gets its own copy of the value.
            keep: list[bytes] = []
            encoded = self.encode(value, keep)
            _val_clone(_address(encoded), ctypes.addressof(results.contents))


_HOST_FUNCTIONS: dict[int, _HostFunction] = {}
_HANDLES = itertools.count(1)


@ffi.wasmtime_component_func_callback_t
def _serve(handle, context, ty, args, nargs, results, nresults):  # type: ignore[no-untyped-def]
    host_function = _HOST_FUNCTIONS[handle]
    try:
        host_function.serve(ty, args, nargs, results)
    except Exception as e:  # noqa: BLE001 — it becomes the guest's trap, which its caller sees
        error = WasmtimeError(f"host function {host_function.name} failed: {type(e).__name__}: {e}")
        return ctypes.cast(error._consume(), ctypes.c_void_p).value
    return 0


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _forget(handle):  # type: ignore[no-untyped-def]
    _HOST_FUNCTIONS.pop(handle, None)


def define(instance: LinkerInstance, name: str, function: Callable[..., Any]) -> None:
    """Serve the import `name` of `instance` with `function(*args)`, converted as `Signature.call` converts.

    Unlike wasmtime-py's `add_func`, records go in and out without per-field name lookups
    and lists of numbers in bulk; `result`s are returned as `Ok(...)`/`Err(...)`, records
    as any object or dict with the fields' snake_case names, variants as `Variant`s. An
    exception in `function`, or a value that does not fit the import's type, traps the
    calling component with a message naming `name` and the exception.
    """
    handle = next(_HANDLES)
    _HOST_FUNCTIONS[handle] = _HostFunction(name, function)
    encoded = name.encode("utf-8")
    error = ffi.wasmtime_component_linker_instance_add_func(
        instance.ptr(), ctypes.create_string_buffer(encoded), len(encoded), _serve, handle, _forget,
    )
    if error:
        _HOST_FUNCTIONS.pop(handle)
        raise WasmtimeError._from_ptr(error)
