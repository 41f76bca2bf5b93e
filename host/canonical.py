"""Moving component-model values between Python and wasmtime's C API, fast.

wasmtime-py converts every value through per-element Python objects: a `list<u32>` of
5,000 token ids costs about 6 ms each way, more than tokenizing the text. The C API
hands lists over as arrays of `wasmtime_component_val_t` (a kind byte and a union, 32
bytes each), so a list of numbers can be read or written as one strided buffer copy.
This module compiles, once per function type, a lifter and a lowerer for each value
type, with that bulk path for lists of numbers and plain per-value code for the rest.
The same conversions serve both directions: calling a component's exports
(`Signature.call`) and answering its imports with host functions (`define`).
"""

from __future__ import annotations

import array
import ctypes
import itertools
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
Lift = Callable[[Val], Any]
Lower = Callable[[Any, Val], None]

T = TypeVar("T")


@dataclass(frozen=True)
class Ok(Generic[T]):
    """The `ok` case of a component `result`."""

    value: T


@dataclass(frozen=True)
class Err(Generic[T]):
    """The `err` case of a component `result`."""

    value: T


_VAL_SIZE = ctypes.sizeof(Val)
_PAYLOAD_OFFSET = Val.of.offset

# Number types: (C API kind, union field, array typecode of the payload as stored in the union).
_NUMBERS: dict[type, tuple[int, str, str]] = {
    U8: (ffi.WASMTIME_COMPONENT_U8.value, "u8", "B"),
    S8: (ffi.WASMTIME_COMPONENT_S8.value, "s8", "b"),
    U16: (ffi.WASMTIME_COMPONENT_U16.value, "u16", "H"),
    S16: (ffi.WASMTIME_COMPONENT_S16.value, "s16", "h"),
    U32: (ffi.WASMTIME_COMPONENT_U32.value, "u32", "I"),
    S32: (ffi.WASMTIME_COMPONENT_S32.value, "s32", "i"),
    U64: (ffi.WASMTIME_COMPONENT_U64.value, "u64", "Q"),
    S64: (ffi.WASMTIME_COMPONENT_S64.value, "s64", "q"),
    F32: (ffi.WASMTIME_COMPONENT_F32.value, "f32", "f"),
    F64: (ffi.WASMTIME_COMPONENT_F64.value, "f64", "d"),
}


def lifter(ty: ValType) -> Lift:
    """A function that reads a C value of type `ty` into Python, without freeing it."""
    number = _NUMBERS.get(type(ty))
    if number is not None:
        field = number[1]
        return lambda c: getattr(c.of, field)
    if isinstance(ty, Bool):
        return lambda c: bool(c.of.boolean)
    if isinstance(ty, Char):
        return lambda c: chr(c.of.character)
    if isinstance(ty, String):
        return lambda c: _text(c.of.string)
    if isinstance(ty, ListType):
        return _list_lifter(ty)
    if isinstance(ty, RecordType):
        fields = [(_python_name(name), lifter(field_ty)) for name, field_ty in ty.fields]

        def lift_record(c: Val) -> Record:
            record = Record()
            entries = c.of.record.data
            for i, (name, lift) in enumerate(fields):
                setattr(record, name, lift(entries[i].val))
            return record

        return lift_record
    if isinstance(ty, TupleType):
        elements = [lifter(t) for t in ty.elements]
        return lambda c: tuple(lift(c.of.tuple.data[i]) for i, lift in enumerate(elements))
    if isinstance(ty, VariantType):
        cases = {name: (lifter(case_ty) if case_ty is not None else None) for name, case_ty in ty.cases}

        def lift_variant(c: Val) -> Variant:
            tag = _text(c.of.variant.discriminant)
            lift = cases[tag]
            return Variant(tag, lift(c.of.variant.val.contents) if lift else None)

        return lift_variant
    if isinstance(ty, EnumType):
        return lambda c: _text(c.of.enumeration)
    if isinstance(ty, OptionType):
        lift_some = lifter(ty.payload)
        return lambda c: lift_some(c.of.option.contents) if c.of.option else None
    if isinstance(ty, ResultType):
        lift_ok = lifter(ty.ok) if ty.ok is not None else None
        lift_err = lifter(ty.err) if ty.err is not None else None

        def lift_result(c: Val) -> Ok[Any] | Err[Any]:
            payload = c.of.result.val
            if c.of.result.is_ok:
                return Ok(lift_ok(payload.contents) if lift_ok else None)
            return Err(lift_err(payload.contents) if lift_err else None)

        return lift_result
    if isinstance(ty, FlagsType):
        return lambda c: {_text(c.of.flags.data[i]) for i in range(c.of.flags.size)}
    raise TypeError(f"edgepop cannot lift component values of type {type(ty).__name__}")


def _text(vec: Any) -> str:
    """The UTF-8 text in a C byte vector, in one copy (wasmtime-py's helper makes a ctypes array type first)."""
    return ctypes.string_at(vec.data, vec.size).decode("utf-8")


def _list_lifter(ty: ListType) -> Lift:
    element = ty.element
    number = _NUMBERS.get(type(element))
    if number is not None:
        typecode = number[2]
        itemsize = array.array(typecode).itemsize
        stride, start = _VAL_SIZE // itemsize, _PAYLOAD_OFFSET // itemsize

        def lift_numbers(c: Val) -> list[Any] | bytes:
            size = c.of.list.size
            if size == 0:
                return b"" if typecode == "B" else []
            raw = ctypes.string_at(c.of.list.data, size * _VAL_SIZE)
            values = memoryview(raw).cast(typecode)[start::stride]
            return values.tobytes() if typecode == "B" else values.tolist()

        return lift_numbers
    lift_element = lifter(element)
    return lambda c: [lift_element(c.of.list.data[i]) for i in range(c.of.list.size)]


def lowerer(ty: ValType) -> Lower:
    """A function that writes a Python value of type `ty` into a C value slot it allocates for."""
    number = _NUMBERS.get(type(ty))
    if number is not None:
        kind, field, _ = number
        python_type = float if field.startswith("f") else int
        return _checked(python_type, f"{python_type.__name__} for {field}", kind,
                        lambda slot, value: setattr(slot.of, field, value))
    if isinstance(ty, Bool):
        return _checked(bool, "bool", ffi.WASMTIME_COMPONENT_BOOL.value,
                        lambda slot, value: setattr(slot.of, "boolean", value))
    if isinstance(ty, String):
        return _checked(str, "str", ffi.WASMTIME_COMPONENT_STRING.value,
                        lambda slot, value: _new_byte_vec(ctypes.addressof(slot) + _PAYLOAD_OFFSET,
                                                          value.encode("utf-8")))
    if isinstance(ty, ListType):
        return _list_lowerer(ty)
    if isinstance(ty, OptionType):
        lower_some = lowerer(ty.payload)

        def lower_option(value: Any, slot: Val) -> None:
            slot.kind = ffi.WASMTIME_COMPONENT_OPTION.value
            slot.of.option = None
            if value is not None:
                slot.of.option = _boxed(lower_some, value)

        return lower_option
    if isinstance(ty, RecordType):
        # Per field: the WIT name as the C API wants it, the Python name, the lowerer.
        fields = [(name.encode("utf-8"), _python_name(name), lowerer(field_ty)) for name, field_ty in ty.fields]

        def lower_record(value: Any, slot: Val) -> None:
            raw = ffi.wasmtime_component_valrecord_t()
            ffi.wasmtime_component_valrecord_new_uninit(raw, len(fields))
            entries = ctypes.cast(raw.data, ctypes.c_void_p).value or 0
            _zero(entries, len(fields), _ENTRY_SIZE)
            slot.kind = ffi.WASMTIME_COMPONENT_RECORD.value
            slot.of.record = raw
            field_of = value.__getitem__ if isinstance(value, dict) else value.__getattribute__
            for i, (name, key, lower) in enumerate(fields):
                entry = entries + i * _ENTRY_SIZE
                _new_byte_vec(entry, name)
                lower(field_of(key), Val.from_address(entry + _ENTRY_VAL_OFFSET))

        return lower_record
    if isinstance(ty, VariantType):
        cases = {name: (lowerer(case_ty) if case_ty is not None else None) for name, case_ty in ty.cases}

        def lower_variant(value: Any, slot: Val) -> None:
            if not isinstance(value, Variant) or value.tag not in cases:
                raise TypeError(f"expected a Variant with a tag of {sorted(cases)}, got {value!r}")
            slot.kind = ffi.WASMTIME_COMPONENT_VARIANT.value
            slot.of.variant.discriminant = ffi.str_to_capi(value.tag)
            slot.of.variant.val = _boxed(cases[value.tag], value.payload)

        return lower_variant
    if isinstance(ty, ResultType):
        lower_ok = lowerer(ty.ok) if ty.ok is not None else None
        lower_err = lowerer(ty.err) if ty.err is not None else None

        def lower_result(value: Any, slot: Val) -> None:
            if not isinstance(value, (Ok, Err)):
                raise TypeError(f"expected Ok(...) or Err(...) for a result, got {type(value).__name__}")
            slot.kind = ffi.WASMTIME_COMPONENT_RESULT.value
            slot.of.result.is_ok = isinstance(value, Ok)
            slot.of.result.val = _boxed(lower_ok if isinstance(value, Ok) else lower_err, value.value)

        return lower_result
    raise TypeError(f"edgepop cannot lower component values of type {type(ty).__name__}")


def _boxed(lower: Lower | None, payload: Any) -> Any:
    """A case's payload as the C API holds it, in a value of its own (None for no payload)."""
    if lower is None:
        return None
    value = Val()
    lower(payload, value)
    return ffi.wasmtime_component_val_new(byref(value))


def _new_byte_vec(address: int, data: bytes) -> None:
    """Write a C byte vector holding a copy of `data` at `address` (wasmtime-py's helper copies twice)."""
    _wasm_byte_vec_new(address, len(data), data)


# wasm_byte_vec_new(out, size, data), typed to take an address and Python bytes as they are.
_wasm_byte_vec_new = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)(
    ("wasm_byte_vec_new", ffi.dll))
_ENTRY_SIZE = ctypes.sizeof(ffi.wasmtime_component_valrecord_entry)
_ENTRY_VAL_OFFSET = ffi.wasmtime_component_valrecord_entry.val.offset


def _checked(python_type: type, expected: str, kind: int, store: Callable[[Val, Any], None]) -> Lower:
    """A lowerer for a scalar: check the Python type (a bool is not an int here), then store it."""

    def lower(value: Any, slot: Val) -> None:
        if not isinstance(value, python_type) or (python_type is not bool and isinstance(value, bool)):
            raise TypeError(f"expected {expected}, got {type(value).__name__}")
        slot.kind = kind
        store(slot, value)

    return lower


def _list_lowerer(ty: ListType) -> Lower:
    element = ty.element
    number = _NUMBERS.get(type(element))
    if number is not None:
        kind, _, typecode = number
        itemsize = array.array(typecode).itemsize
        stride, start = _VAL_SIZE // itemsize, _PAYLOAD_OFFSET // itemsize

        def lower_numbers(values: Any, slot: Val) -> None:
            try:
                payload = array.array(typecode, values)
            except (TypeError, OverflowError) as e:
                raise TypeError(f"expected a list of {typecode!r} numbers: {e}") from None
            size = len(payload)
            buffer = bytearray(size * _VAL_SIZE)
            view = memoryview(buffer)
            view[0::_VAL_SIZE] = bytes([kind]) * size
            view.cast(typecode)[start::stride] = payload
            raw = ffi.wasmtime_component_vallist_t()
            ffi.wasmtime_component_vallist_new_uninit(raw, size)
            if size:
                ctypes.memmove(raw.data, bytes(buffer), len(buffer))
            slot.kind = ffi.WASMTIME_COMPONENT_LIST.value
            slot.of.list = raw

        return lower_numbers
    lower_element = lowerer(element)

    def lower_list(values: Any, slot: Val) -> None:
        if not isinstance(values, (list, tuple)):
            raise TypeError(f"expected a list, got {type(values).__name__}")
        raw = ffi.wasmtime_component_vallist_t()
        ffi.wasmtime_component_vallist_new_uninit(raw, len(values))
        elements = ctypes.cast(raw.data, ctypes.c_void_p).value or 0
        _zero(elements, len(values), _VAL_SIZE)
        slot.kind = ffi.WASMTIME_COMPONENT_LIST.value
        slot.of.list = raw
        for i, value in enumerate(values):
            lower_element(value, Val.from_address(elements + i * _VAL_SIZE))

    return lower_list


def _python_name(wit_name: str) -> str:
    """Record fields as Python spells them: `model-name` becomes `model_name`."""
    return wit_name.replace("-", "_")


def _zero(data: Any, count: int, size: int) -> None:
    """Make fresh C slots plain `false` booleans, so freeing a half-lowered value is safe."""
    if count:
        ctypes.memset(data, 0, count * size)


class Signature:
    """A component function type with its conversions compiled once, shared by all instances.

    `result<T, E>` values come back as `Ok(T)` or `Err(E)`.
    """

    def __init__(self, params: list[tuple[str, ValType]], result: ValType | None) -> None:
        self.param_names = [name for name, _ in params]
        self._lowerers = [lowerer(ty) for _, ty in params]
        self._lift = lifter(result) if result is not None else None

    def call(self, store: Any, func: Func, *args: Any) -> Any:
        """Call `func` (of this signature) in `store`; wasmtime errors and traps raise WasmtimeError."""
        if len(args) != len(self._lowerers):
            raise TypeError(f"expected {len(self._lowerers)} arguments ({', '.join(self.param_names)}), got {len(args)}")
        params = (Val * max(len(args), 1))()
        lowered = 0
        result = Val()
        try:
            for lower, value, slot in zip(self._lowerers, args, params):
                lowered += 1
                lower(value, slot)
            error = ffi.wasmtime_component_func_call(
                byref(func._func), store._context(), params, len(args),
                byref(result) if self._lift else None, 1 if self._lift else 0,
            )
            if error:
                raise WasmtimeError._from_ptr(error)
            try:
                return self._lift(result) if self._lift else None
            finally:
                if self._lift:
                    ffi.wasmtime_component_val_delete(byref(result))
                func.post_return(store)
        finally:
            for i in range(lowered):
                ffi.wasmtime_component_val_delete(byref(params[i]))


class _HostFunction:
    """A Python function serving a component import; its conversions are compiled on the first call,
    from the import's type as the component declares it."""

    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        self.name = name
        self.function = function
        self.lifts: list[Lift] | None = None
        self.lower: Lower | None = None

    def serve(self, ty: Any, args: Any, results: Any) -> None:
        if self.lifts is None:
            func_type = FuncType._from_ptr(ty, owner=self)
            self.lower = lowerer(func_type.result) if func_type.result is not None else None
            self.lifts = [lifter(param) for _, param in func_type.params]
        # The arguments stay owned by wasmtime, which frees them after the call.
        value = self.function(*(lift(args[i]) for i, lift in enumerate(self.lifts)))
        if self.lower is not None:
            self.lower(value, results[0])  # wasmtime takes what is lowered into its result slot


_HOST_FUNCTIONS: dict[int, _HostFunction] = {}
_HANDLES = itertools.count(1)


@ffi.wasmtime_component_func_callback_t
def _serve(handle, context, ty, args, nargs, results, nresults):  # type: ignore[no-untyped-def]
    host_function = _HOST_FUNCTIONS[handle]
    try:
        host_function.serve(ty, args, results)
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
