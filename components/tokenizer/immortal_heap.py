"""Freeze the heap the build leaves behind, so that requests read it without copying it.

An instance's memory starts as a copy-on-write mapping of the heap baked at build time,
and every page a request writes to is copied first (about 2.5 µs a page on our test
machine). CPython writes to each object it touches, its reference count, even to read a
table; the cyclic GC writes to the headers of the containers it scans. So a first encode
of 1 KB copied some 500 pages it only meant to read.

`freeze()` runs last at build time: it makes every object reachable from the GC's
containers immortal (PEP 683: Py_INCREF and Py_DECREF skip such objects), then moves the
containers out of the collector's reach with `gc.freeze()`. Nothing baked is ever freed
afterwards, which is what a snapshot of tables wants anyway.
"""

import gc

import _immortal  # built from immortal.wat by `edgepop build tokenizer`

# Objects with no references to follow: made immortal where they are found.
_LEAVES = frozenset({str, int, float, bytes, bool, type(None)})


def freeze():
    """Make everything reachable immortal, then freeze the GC."""
    gc.collect()
    immortalize = _immortal.immortalize
    pending = [obj for obj in gc.get_objects() if immortalize(obj)]
    while pending:
        for child in _children(pending.pop()):
            if immortalize(child) and type(child) not in _LEAVES:
                pending.append(child)
    gc.freeze()


def _children(obj):
    """What `obj` refers to, without a list of it all for the largest tables."""
    kind = type(obj)
    if kind is dict:
        yield from obj.keys()
        yield from obj.values()
    elif kind in (list, tuple, set, frozenset):
        yield from obj
    else:
        yield from gc.get_referents(obj)
