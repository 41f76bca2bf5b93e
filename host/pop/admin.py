"""The operator API: upload, inspect, activate, roll back and delete components.

    GET    /admin/components                       names, active versions
    GET    /admin/components/{name}                a name's version history
    PUT    /admin/components/{name}[?activate=0]   upload a .wasm (validated, compiled, stored)
    POST   /admin/components/{name}/activate       {"sha256": "..."}
    POST   /admin/components/{name}/rollback       {"to": "..."} or {} for the previous version
    DELETE /admin/components/{name}

Every route wants `Authorization: Bearer <admin token>`; client API keys are never
admin tokens. With no admin tokens configured the API is off. Uploads are checked
and compiled in a worker thread; activation is one atomic switch in the store, and the
models that use the name load the new version before the answer, so the next request
runs it while requests in flight finish on the one they started with.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..registry import (ComponentTooLarge, NoActiveVersion, NothingToRollBackTo, RegistryError, UnknownComponent,
                        UnknownVersion)
from . import openai_format as fmt
from .config import PopConfig

if TYPE_CHECKING:
    from .state import PopState


def admin_routes(config: PopConfig, current: Callable[[], "PopState"]) -> list[Route]:
    def guarded(handler: Callable[[Request, "PopState"], Any]) -> Callable[[Request], Any]:
        async def route(request: Request) -> Response:
            if not config.admin_tokens:
                return _error(403, "the operator API is off: no admin tokens are configured ([auth] admin_tokens)")
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not any(hmac.compare_digest(token.strip(), t) for t in config.admin_tokens):
                return _error(401, "the operator API needs Authorization: Bearer <admin token>")
            try:
                return await handler(request, current())
            except ComponentTooLarge as e:
                return _error(413, str(e))
            except (UnknownComponent, UnknownVersion) as e:
                return _error(404, str(e))
            except (NoActiveVersion, NothingToRollBackTo) as e:
                return _error(409, str(e))
            except RegistryError as e:
                return _error(400, str(e))
        return route

    async def list_components(request: Request, state: "PopState") -> Response:
        store = state.store
        listed = []
        for name in store.names():
            versions = store.versions(name)
            active = next((v for v in versions if v.active), None)
            listed.append({"name": name, "active": _version(active) if active else None, "versions": len(versions)})
        return JSONResponse({"components": listed})

    async def show(request: Request, state: "PopState") -> Response:
        name = request.path_params["name"]
        return JSONResponse({"name": name, "versions": [_version(v) for v in state.store.versions(name)]})

    async def upload(request: Request, state: "PopState") -> Response:
        name = request.path_params["name"]
        limit = state.store.max_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ComponentTooLarge(name, int(declared), limit)
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise ComponentTooLarge(name, len(data), limit)
        activate = request.query_params.get("activate", "1") not in ("0", "false", "no")
        known = {v.sha256 for v in _versions_or_none(state, name)}
        version = await anyio.to_thread.run_sync(lambda: state.store.upload(name, bytes(data), activate=activate))
        if activate:
            await anyio.to_thread.run_sync(state.reload, name)
        return JSONResponse({"name": name, "version": _version(version)},
                            status_code=200 if version.sha256 in known else 201)

    async def activate(request: Request, state: "PopState") -> Response:
        name = request.path_params["name"]
        sha256 = (await _json(request)).get("sha256")
        if not isinstance(sha256, str):
            return _error(400, "the body must be {\"sha256\": \"<version>\"}")
        await anyio.to_thread.run_sync(state.store.activate, name, sha256)
        await anyio.to_thread.run_sync(state.reload, name)
        return JSONResponse({"name": name, "active": _version(state.store.active(name))})

    async def rollback(request: Request, state: "PopState") -> Response:
        name = request.path_params["name"]
        to = (await _json(request)).get("to")
        await anyio.to_thread.run_sync(lambda: state.store.rollback(name, to))
        await anyio.to_thread.run_sync(state.reload, name)
        return JSONResponse({"name": name, "active": _version(state.store.active(name))})

    async def delete(request: Request, state: "PopState") -> Response:
        name = request.path_params["name"]
        if name in state.names_in_use():
            return _error(409, f"{name} is used by a model of this PoP's config; it cannot be deleted")
        await anyio.to_thread.run_sync(state.store.delete, name)
        return JSONResponse({"name": name, "deleted": True})

    return [
        Route("/components", guarded(list_components), methods=["GET"]),
        Route("/components/{name}", guarded(show), methods=["GET"]),
        Route("/components/{name}", guarded(upload), methods=["PUT"]),
        Route("/components/{name}", guarded(delete), methods=["DELETE"]),
        Route("/components/{name}/activate", guarded(activate), methods=["POST"]),
        Route("/components/{name}/rollback", guarded(rollback), methods=["POST"]),
    ]


def _version(version: Any) -> dict[str, Any]:
    return {**asdict(version), "uploaded_at": version.uploaded_at.isoformat()}


def _versions_or_none(state: "PopState", name: str) -> list[Any]:
    try:
        return state.store.versions(name)
    except UnknownComponent:
        return []


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json() if await request.body() else {}
    except ValueError:
        raise RegistryError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise RegistryError("the body must be a JSON object")
    return body


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(fmt.error(message, "admin_error"), status_code=status)

