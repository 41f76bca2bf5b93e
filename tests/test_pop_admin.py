"""The operator API on a real PoP: upload (with `edgepop deploy`), activate, roll back, delete.

The PoP serves a model whose tokenizer is a name in its component store. Uploading the
GPT-2 tokenizer component under that name is a version whose effect every answer shows:
the prompt token counts change (GPT-2 adds no BOS and splits differently).
"""

from __future__ import annotations

import threading

import httpx
import openai
import pytest

from edgepop.cli import main as edgepop
from edgepop.pop.app import create_app
from edgepop.pop.config import parse
from edgepop.registry import ComponentStore
from edgepop.runtime import Runtime
from support import component_path, serving

ADMIN = "admin-test-token"
NAME = "chat-tokenizer"
PROMPT = "Edge platforms run uploaded components."


@pytest.fixture(scope="module")
def pop(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pop-admin")
    runtime = Runtime()
    seeded = ComponentStore(tmp / "store", runtime)
    seeded.upload(NAME, component_path("llama-3.2").read_bytes())
    seeded.close()
    runtime.close()
    config = parse({
        "server": {"store": str(tmp / "store")},
        "auth": {"admin_tokens": [ADMIN]},
        "origins": {"demo": {"kind": "demo"}},
        "models": [{"name": "stored", "tokenizer": NAME, "context_window": 4096, "origin": "demo"}],
    }, tmp)
    with serving(create_app(config)) as url:
        yield url


def _admin(method: str, url: str, **kwargs) -> httpx.Response:
    return httpx.request(method, url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=300, **kwargs)


def _prompt_tokens(pop: str) -> int:
    client = openai.OpenAI(base_url=f"{pop}/v1", api_key="unused", max_retries=0)
    return client.completions.create(model="stored", prompt=PROMPT, max_tokens=4).usage.prompt_tokens


def _sha256s(pop: str) -> tuple[str, list[str]]:
    versions = _admin("GET", f"{pop}/admin/components/{NAME}").json()["versions"]
    return next(v["sha256"] for v in versions if v["active"]), [v["sha256"] for v in versions]


def test_upload_activate_rollback_with_requests_in_flight(pop, capsys):
    llama_tokens = _prompt_tokens(pop)
    llama_sha, _ = _sha256s(pop)
    seen: list[int] = []
    failures: list[Exception] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            try:
                seen.append(_prompt_tokens(pop))
            except Exception as e:  # noqa: BLE001 — any failure fails the test below
                failures.append(e)

    asking = threading.Thread(target=keep_asking)
    asking.start()
    try:
        code = edgepop(["deploy", str(component_path("gpt2")), "--to", pop, "--name", NAME, "--token", ADMIN])
        assert code == 0, capsys.readouterr().err
        gpt2_tokens = _prompt_tokens(pop)
    finally:
        stop.set()
        asking.join()
    assert "active" in capsys.readouterr().out
    assert gpt2_tokens != llama_tokens
    assert not failures  # no request failed while the new version was uploaded and activated
    assert set(seen) <= {llama_tokens, gpt2_tokens} and seen[0] == llama_tokens

    gpt2_sha, history = _sha256s(pop)
    assert history == [llama_sha, gpt2_sha]
    rolled = _admin("POST", f"{pop}/admin/components/{NAME}/rollback", json={})
    assert rolled.status_code == 200 and rolled.json()["active"]["sha256"] == llama_sha
    assert _prompt_tokens(pop) == llama_tokens
    forward = _admin("POST", f"{pop}/admin/components/{NAME}/activate", json={"sha256": gpt2_sha})
    assert forward.status_code == 200 and _prompt_tokens(pop) == gpt2_tokens
    back = _admin("POST", f"{pop}/admin/components/{NAME}/rollback", json={"to": llama_sha})
    assert back.json()["active"]["sha256"] == llama_sha and _prompt_tokens(pop) == llama_tokens


def test_the_same_bytes_again_add_no_version(pop):
    before = _sha256s(pop)[1]
    again = _admin("PUT", f"{pop}/admin/components/{NAME}", content=component_path("llama-3.2").read_bytes())
    assert again.status_code == 200 and _sha256s(pop)[1] == before


def test_uploads_that_are_not_edgepop_components_are_refused(pop):
    core = _admin("PUT", f"{pop}/admin/components/other", content=b"\0asm\x01\0\0\0")
    assert core.status_code == 400 and "core module" in core.json()["error"]["message"]
    junk = _admin("PUT", f"{pop}/admin/components/other", content=b"not wasm at all")
    assert junk.status_code == 400
    bad_name = _admin("PUT", f"{pop}/admin/components/Bad%20Name", content=b"\0asm")
    assert bad_name.status_code == 400
    assert _admin("POST", f"{pop}/admin/components/{NAME}/activate", json={"sha256": "0" * 64}).status_code == 404


def test_the_operator_api_wants_an_admin_token(pop):
    assert httpx.get(f"{pop}/admin/components").status_code == 401
    assert httpx.get(f"{pop}/admin/components", headers={"authorization": "Bearer nope"}).status_code == 401
    listed = _admin("GET", f"{pop}/admin/components").json()["components"]
    assert [c["name"] for c in listed] == [NAME]


def test_a_name_the_config_runs_cannot_be_deleted_but_others_can(pop):
    assert _admin("DELETE", f"{pop}/admin/components/{NAME}").status_code == 409
    assert _admin("PUT", f"{pop}/admin/components/spare", content=component_path("gpt2").read_bytes()).status_code == 201
    assert _admin("DELETE", f"{pop}/admin/components/spare").status_code == 200
    assert _admin("GET", f"{pop}/admin/components/spare").status_code == 404
