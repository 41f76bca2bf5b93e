"""Chat templates: messages to the one prompt string the model was trained on.

Models publish their template as Jinja in tokenizer_config.json; Hugging Face renders it
in a sandbox with `trim_blocks` and `lstrip_blocks`, `raise_exception` and `tojson`, and
the special tokens' text as variables. This does the same, so the ids the origin gets
are those `tokenizer.apply_chat_template(messages, add_generation_prompt=True)` gives.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import EdgepopError


class ChatTemplateError(EdgepopError):
    """The messages do not fit the model's template, or there is no usable template."""


class ChatTemplate:
    def __init__(self, source: str, special_tokens: dict[str, str]) -> None:
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        environment.globals["raise_exception"] = _raise
        environment.globals["strftime_now"] = lambda fmt: datetime.now(timezone.utc).strftime(fmt)
        environment.filters["tojson"] = _tojson
        try:
            self._template = environment.from_string(source)
        except TemplateError as e:
            raise ChatTemplateError(f"the chat template does not parse: {e}") from None
        self._special_tokens = special_tokens

    @classmethod
    def from_tokenizer_config(cls, path: Path) -> "ChatTemplate":
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ChatTemplateError(f"cannot read a tokenizer config from {path}: {e}") from None
        source = config.get("chat_template")
        if isinstance(source, list):  # several named templates: the default one
            source = next((t.get("template") for t in source if t.get("name") == "default"), None)
        if not isinstance(source, str):
            raise ChatTemplateError(f"{path} has no chat_template")
        special = {key: _token_text(config[key]) for key in
                   ("bos_token", "eos_token", "unk_token", "pad_token") if config.get(key)}
        return cls(source, special)

    def render(self, messages: list[dict[str, Any]]) -> str:
        """The prompt for `messages`, ending where the assistant's answer starts."""
        try:
            return self._template.render(messages=messages, add_generation_prompt=True, **self._special_tokens)
        except ChatTemplateError:
            raise
        except (TemplateError, TypeError, KeyError) as e:
            raise ChatTemplateError(f"the messages do not fit the model's chat template: {e}") from None


def _raise(message: str) -> None:
    raise ChatTemplateError(f"the model's chat template refused the messages: {message}")


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _token_text(token: Any) -> str:
    return token["content"] if isinstance(token, dict) else str(token)
