"""edgepop's worlds, and what a given component imports and exports.

A world (wit/worlds.wit) is what a component promises: the interfaces it exports and
the host interfaces it may import. This module reads a compiled component's actual
imports and exports and says which world it targets and which imports go beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass

from wasmtime import Engine
from wasmtime.component import Component, ComponentInstanceType, FuncType


@dataclass(frozen=True)
class World:
    name: str
    exports: frozenset[str]
    # Host interfaces beyond WASI that a component of this world may import.
    imports: frozenset[str] = frozenset()


WORLDS = (
    World("edge:ai/tokenizer-component@0.2.0", exports=frozenset({"edge:ai/tokenizer@0.2.0"})),
    # The host serves these four (rag.Capabilities.linker); the tokenizer by chaining in
    # the tokenizer component of the prompt's model.
    World(
        "edge:ai/rag-component@0.2.0",
        exports=frozenset({"edge:ai/retriever@0.2.0"}),
        imports=frozenset({
            "edge:ai/embeddings@0.2.0",
            "edge:ai/vector-search@0.2.0",
            "edge:ai/chunks@0.2.0",
            "edge:ai/tokenizer@0.2.0",
        }),
    ),
)

# The WASI 0.2 interfaces CPython links against. They are granted with no capability:
# no preopened directory, no environment, no network (see runtime.Instance).
WASI_PACKAGES = ("wasi:io/", "wasi:clocks/", "wasi:random/", "wasi:cli/", "wasi:filesystem/", "wasi:sockets/")


@dataclass(frozen=True)
class Shape:
    """A component's imports, and its exported interfaces with their function names."""

    imports: tuple[str, ...]
    exports: dict[str, tuple[str, ...]]

    def world(self) -> World | None:
        """The edgepop world whose exports this component provides, if any."""
        for world in WORLDS:
            if world.exports <= self.exports.keys():
                return world
        return None

    def unexpected_imports(self, world: World) -> list[str]:
        """Imports that are neither WASI 0.2 nor host interfaces the world allows."""
        return [
            name for name in self.imports
            if name not in world.imports and not (name.startswith(WASI_PACKAGES) and "@0.2." in name)
        ]


def shape(component: Component, engine: Engine) -> Shape:
    ty = component.type
    exports: dict[str, tuple[str, ...]] = {}
    for name, extern in ty.exports(engine).items():
        item = extern.ty
        if isinstance(item, ComponentInstanceType):
            exports[name] = tuple(
                fn for fn, member in item.exports(engine).items() if isinstance(member.ty, FuncType)
            )
        elif isinstance(item, FuncType):
            exports[name] = ()
    return Shape(imports=tuple(ty.imports(engine)), exports=exports)
