"""Moving component-model values between Python and wasmtime's C API, fast.

wasmtime-py converts every value through per-element Python objects: a `list<u32>` of
5,000 token ids costs about 6 ms each way, more than tokenizing the text. The C API
hands lists over as arrays of `wasmtime_component_val_t` (a kind byte and a union, 32
bytes each), so a list of numbers can be read or written as one strided buffer copy.
This module compiles, once per function type, a lifter and a lowerer for each value
type, with that bulk path for lists of numbers and plain per-value code for the rest.
"""

from __future__ import annotations

import array
import ctypes
from ctypes import byref
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from wasmtime import WasmtimeError, _ffi as ffi
from wasmtime.component import (
    F32, F64, S8, S16, S32, S64, U8, U16, U32, U64,
    Bool, Char, EnumType, FlagsType, ListType, OptionType, Record, RecordType,
    Func, ResultType, String, TupleType, ValType, Variant, VariantType,
)
from wasmtime.component._enter import maybe_raise_last_exn

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
        return lambda c: ffi.to_str(c.of.string)
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
            tag = ffi.to_str(c.of.variant.discriminant)
            lift = cases[tag]
            return Variant(tag, lift(c.of.variant.val.contents) if lift else None)

        return lift_variant
    if isinstance(ty, EnumType):
        return lambda c: ffi.to_str(c.of.enumeration)
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
        return lambda c: {ffi.to_str(c.of.flags.data[i]) for i in range(c.of.flags.size)}
    raise TypeError(f"edgepop cannot lift component values of type {type(ty).__name__}")


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
                        lambda slot, value: setattr(slot.of, "string", _utf8_vec(value)))
    if isinstance(ty, ListType):
        return _list_lowerer(ty)
    if isinstance(ty, OptionType):
        lower_some = lowerer(ty.payload)

        def lower_option(value: Any, slot: Val) -> None:
            slot.kind = ffi.WASMTIME_COMPONENT_OPTION.value
            slot.of.option = None
            if value is not None:
                some = Val()
                lower_some(value, some)
                slot.of.option = ffi.wasmtime_component_val_new(byref(some))

        return lower_option
    if isinstance(ty, RecordType):
        fields = [(name, lowerer(field_ty)) for name, field_ty in ty.fields]

        def lower_record(value: Any, slot: Val) -> None:
            raw = ffi.wasmtime_component_valrecord_t()
            ffi.wasmtime_component_valrecord_new_uninit(raw, len(fields))
            _zero(raw.data, len(fields), ctypes.sizeof(ffi.wasmtime_component_valrecord_entry))
            slot.kind = ffi.WASMTIME_COMPONENT_RECORD.value
            slot.of.record = raw
            for i, (name, lower) in enumerate(fields):
                raw.data[i].name = ffi.str_to_capi(name)
                key = _python_name(name)
                field_value = value[key] if isinstance(value, dict) else getattr(value, key)
                lower(field_value, raw.data[i].val)

        return lower_record
    raise TypeError(f"edgepop cannot lower component values of type {type(ty).__name__}")


def _utf8_vec(text: str) -> Any:
    """`text` as a C byte vector, copied once (wasmtime-py's helper copies it twice)."""
    data = text.encode("utf-8")
    vec = ffi.wasm_byte_vec_t()
    ffi.wasm_byte_vec_new(byref(vec), len(data), ctypes.cast(ctypes.c_char_p(data), ctypes.POINTER(ctypes.c_uint8)))
    return vec


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
        _zero(raw.data, len(values), _VAL_SIZE)
        slot.kind = ffi.WASMTIME_COMPONENT_LIST.value
        slot.of.list = raw
        for i, value in enumerate(values):
            lower_element(value, raw.data[i])

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
                wasm_error = WasmtimeError._from_ptr(error)
                maybe_raise_last_exn()  # a host import's own Python exception, if that was the cause
                raise wasm_error
            try:
                return self._lift(result) if self._lift else None
            finally:
                if self._lift:
                    ffi.wasmtime_component_val_delete(byref(result))
                func.post_return(store)
        finally:
            for i in range(lowered):
                ffi.wasmtime_component_val_delete(byref(params[i]))
