"""Freeze the heap the build leaves behind, so that requests read it without copying it.

An instance's memory starts as a copy-on-write mapping of the heap baked at build time,
and every page a request writes to is copied first (about 2.5 µs a page on our test
machine). Two things made a first encode of 1 KB copy pages it had no business writing:

- CPython writes to each object it touches, its reference count, even to read a table,
  and the cyclic GC writes to the headers of the containers it scans.
- The build's temporaries leave free chunks scattered between the baked objects, and the
  guest's malloc (wasi-libc's dlmalloc: this CPython has no pymalloc) hands out an
  exact-size free chunk before carving new memory. So a request's small objects landed
  on pages all over the baked tables, one page per size of object.

`freeze()` runs last at build time. It makes every object reachable from the GC's
containers immortal (PEP 683: Py_INCREF and Py_DECREF skip such objects), takes every
free chunk of up to 4 KB with an immortal filler, and moves the containers out of the
collector's reach with `gc.freeze()`. Nothing baked is ever freed afterwards, which is
what a snapshot of tables wants anyway, and a request's allocations are carved from one
region, side by side.
"""

import gc

import _immortal  # built from immortal.wat by `edgepop build tokenizer`

# Objects with no references to follow: made immortal where they are found.
_LEAVES = frozenset({str, int, float, bytes, bool, type(None)})
# Free chunks up to this size are taken; larger ones are few and rarely wanted by a request.
_LARGEST_CHUNK_TAKEN = 4096
# A filler of n bytes is a bytes object: its header and malloc's rounding add less than this.
_FILLER_OVERHEAD = 40
# Taking chunks of one size can split a larger chunk and free a smaller remainder, which a
# further pass takes; in practice the passes run out after two or three.
_MAX_PASSES = 8


def freeze():
    """Make everything reachable immortal, take the free chunks, then freeze the GC."""
    gc.collect()
    immortalize = _immortal.immortalize
    pending = [obj for obj in gc.get_objects() if immortalize(obj)]
    while pending:
        for child in _children(pending.pop()):
            if immortalize(child) and type(child) not in _LEAVES:
                pending.append(child)
    del pending
    for _ in range(_MAX_PASSES):
        if not _take_free_chunks(immortalize):
            break
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


def _take_free_chunks(immortalize) -> int:
    """Allocate every free chunk of up to 4 KB as an immortal filler; return how many were taken.

    For each size, fillers are allocated until one lands where malloc carves new memory:
    at the carving front seen last, or right after the previous filler (free chunks are
    never adjacent, dlmalloc merges them). That one is not a free chunk and is let go,
    which gives its memory back to the region it was carved from.
    """
    taken = 0
    front = previous = -1
    for size in range(1, _LARGEST_CHUNK_TAKEN, 4):
        while True:
            filler = bytes(size)
            address = id(filler)
            if address == front or 0 < address - previous <= size + _FILLER_OVERHEAD:
                front = address
                del filler  # before the next allocation, so it is carved from the same place
                break
            immortalize(filler)  # never freed: the chunk stays taken
            previous = address
            taken += 1
    return taken
