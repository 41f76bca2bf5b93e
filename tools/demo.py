"""The main job, end to end: start `edgepop serve` (no config: Llama 3.2 tokenizer component,
RAG over the demo knowledge base, the built-in demo origin) and talk to it with the
`openai` SDK, as any existing client would. Then stop it.

Usage: python tools/demo.py [--port 8080]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai

QUESTION = "How do I split a URL into its parts and read the query string?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    edgepop = Path(sys.executable).with_name("edgepop")  # the venv's console script
    server = subprocess.Popen([str(edgepop), "serve", "--port", str(args.port)])
    try:
        _wait_ready(base, server)
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="not-needed-locally")
        print(f"\n$ openai chat.completions.create(model='llama-3.2', messages=[user: {QUESTION!r}])")
        raw = client.chat.completions.with_raw_response.create(
            model="llama-3.2", messages=[{"role": "user", "content": QUESTION}], max_tokens=200)
        answer = raw.parse()
        print(answer.choices[0].message.content)
        print(f"prompt tokens (counted at the edge): {answer.usage.prompt_tokens}; "
              f"sources: {raw.headers.get('x-edgepop-sources', 'none')}")
        print(f"stage timings: {raw.headers['server-timing']}")
        print("\n$ another question, streamed:")
        for chunk in client.chat.completions.create(model="llama-3.2", stream=True, max_tokens=60,
                                                    messages=[{"role": "user", "content": "Say hello."}]):
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
        print()
    finally:
        server.terminate()
        server.wait(30)
    return 0


def _wait_ready(base: str, server: subprocess.Popen) -> None:
    """Until /readyz says ready (the first start also builds the demo knowledge base)."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"edgepop serve exited with status {server.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("edgepop serve did not become ready")


if __name__ == "__main__":
    sys.exit(main())
