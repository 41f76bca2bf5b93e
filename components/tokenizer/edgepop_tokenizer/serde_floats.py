"""JSON read as HF reads tokenizer.json: floats rounded the way serde_json rounds them.

serde_json, as HF `tokenizers` builds it (without `float_roundtrip`), turns a decimal
into an f64 by rounding its digits to a u64 significand and then to f64, and dividing
(or multiplying) by a power of ten: two roundings, so about one number in eight with 17
significant digits comes out one bit away from Python's correctly rounded float. Unigram
scores are such numbers, and Viterbi compares their sums, so the scores are read here
exactly as HF reads them.
"""

from __future__ import annotations

import json
import re

_U64_MAX = (1 << 64) - 1
# serde_json's POW10 table: the f64 nearest to each power of ten, 1e0 through 1e308.
_POW10 = [float(f"1e{i}") for i in range(309)]
_NUMBER = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([-+]?[0-9]{1,9}))?")


def parse_float(text: str) -> float:
    """The f64 serde_json (without float_roundtrip) reads from a JSON number with a fraction or an exponent."""
    found = _NUMBER.fullmatch(text)
    if found is None:
        raise ValueError(f"not a JSON number serde_json reads the same way: {text!r}")
    sign, whole, fraction, exponent = found.groups()
    significand = int(whole + (fraction or ""))
    if significand <= _U64_MAX:  # the common case: every digit fits, as in serde_json
        return _scaled(sign, significand, int(exponent or 0) - len(fraction or ""), text)
    significand, shift = 0, 0
    overflowed = False
    for digit in whole:
        if overflowed or significand * 10 + int(digit) > _U64_MAX:
            overflowed = True  # the remaining digits only scale it
            shift += 1
        else:
            significand = significand * 10 + int(digit)
    for digit in fraction or "":
        if significand * 10 + int(digit) > _U64_MAX:
            break  # digits past a full u64 are dropped
        significand = significand * 10 + int(digit)
        shift -= 1
    return _scaled(sign, significand, shift + int(exponent or 0), text)


def _scaled(sign: str, significand: int, shift: int, text: str) -> float:
    """serde_json's f64_from_parts: the significand as f64, times or divided by a power of ten."""
    value = float(significand)
    if value != 0.0:
        while shift < -308:
            value /= 1e308
            shift += 308
        if shift > 308 or (shift >= 0 and value * _POW10[shift] == float("inf")):
            raise ValueError(f"number out of range: {text!r}")
        value = value * _POW10[shift] if shift >= 0 else value / _POW10[-shift]
    return -value if sign else value


def loads(text: str | bytes) -> object:
    """json.loads, with floats as HF `tokenizers` reads them."""
    return json.loads(text, parse_float=parse_float)
