"""The edge half of one request: tokenize -> early checks -> retrieve/augment, each stage timed.

It runs in a worker thread (component calls are CPU work), on fresh instances of the
model's tokenizer component and, when the model has RAG, of the RAG component chained
to that same tokenizer. What it produces is what the origin gets: the prompt's token
ids (and its text, for origins that take no ids). Nothing reaches an origin before the
context window and the client's quota have been checked here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import EdgepopError, GuestTrap
from ..rag import ChainedTokenizer, EmptyQuery, RagSession
from ..runtime import LoadedComponent
from ..stopwatch import timed
from ..tokenizer import TokenizerSession
from .chat import ChatTemplate
from .config import Model
from .quota import Quotas


class BadRequest(EdgepopError):
    """The request itself is malformed (400)."""


class ComponentFailed(EdgepopError):
    """A component trapped (deadline, memory limit, bug) while serving the request (500)."""

    def __init__(self, component: Versioned, trap: GuestTrap) -> None:
        super().__init__(f"{component.name} (version {component.version[:12]}) failed: {trap}")
        self.component, self.trap = component, trap


class ContextWindowExceeded(EdgepopError):
    def __init__(self, model: Model, prompt_tokens: int, max_tokens: int, augmented: bool = False) -> None:
        what = "the augmented prompt" if augmented else "the prompt"
        super().__init__(
            f"{model.name}'s context window is {model.context_window} tokens, but {what} is "
            f"{prompt_tokens} tokens and max_tokens asks for {max_tokens} more "
            f"({prompt_tokens + max_tokens} in all); refused at the edge, the origin was not contacted"
        )
        self.prompt_tokens, self.max_tokens = prompt_tokens, max_tokens


@dataclass(frozen=True)
class Versioned:
    """A loaded component and the version it was loaded from, as metrics label it."""

    name: str
    loaded: LoadedComponent
    version: str


@dataclass
class Prepared:
    ids: list[int]
    text: str
    max_tokens: int
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EdgeRequest:
    """What the client asked for, in the two shapes the API has."""

    messages: list[dict[str, Any]] | None  # chat
    prompt: str | None  # completion
    max_tokens: int | None
    api_key: str | None


class Edge:
    """One model's edge work. `tokenizer` and `rag` are asked for per request, so an
    activated version serves the next request while one in flight finishes on its own."""

    def __init__(self, model: Model, tokenizer: Callable[[], Versioned], rag: Callable[[], Versioned] | None,
                 template: ChatTemplate | None, quotas: Quotas,
                 on_instance: Callable[[Versioned], None] = lambda v: None) -> None:
        self.model = model
        self._tokenizer = tokenizer
        self._rag = rag
        self._template = template
        self._quotas = quotas
        self._on_instance = on_instance

    def components(self) -> list[Versioned]:
        """The components the next request will use, loaded if they were not yet."""
        return [self._tokenizer(), *([self._rag()] if self._rag else [])]

    def prepare(self, request: EdgeRequest) -> Prepared:
        """Token ids for the origin, or an error before any origin traffic."""
        tokenizer = self._tokenizer()
        try:
            return self._prepare(request, tokenizer)
        except GuestTrap as trap:
            raise ComponentFailed(tokenizer, trap) from None

    def _prepare(self, request: EdgeRequest, tokenizer: Versioned) -> Prepared:
        model = self.model
        seconds: dict[str, float] = {}
        self._on_instance(tokenizer)
        with TokenizerSession(tokenizer.loaded.instantiate()) as session:
            with timed(seconds, "tokenize"):
                text, ids = self._tokenize(session, request.messages, request.prompt)
            with timed(seconds, "check"):
                max_tokens = request.max_tokens if request.max_tokens is not None else model.default_max_tokens
                if max_tokens < 1:
                    raise BadRequest(f"max_tokens must be at least 1, got {max_tokens}")
                if len(ids) + max_tokens > model.context_window:
                    raise ContextWindowExceeded(model, len(ids), max_tokens)
                if request.api_key is not None:
                    self._quotas.take(request.api_key, len(ids) + max_tokens)
            prepared = Prepared(ids, text, max_tokens, seconds=seconds)
            if self._rag is not None:
                with timed(seconds, "augment"):
                    self._augment(prepared, request, session, tokenizer)
        return prepared

    def _tokenize(self, session: TokenizerSession, messages: list[dict[str, Any]] | None,
                  prompt: str | None) -> tuple[str, list[int]]:
        if messages is None:
            assert prompt is not None
            return prompt, session.encode(prompt, add_special_tokens=True)
        if self._template is None:
            raise BadRequest(f"{self.model.name} has no chat template here; send a plain prompt to /v1/completions")
        text = self._template.render(messages)
        # The template wrote the special tokens (BOS, headers) into the text already.
        return text, session.encode(text, add_special_tokens=False)

    def _augment(self, prepared: Prepared, request: EdgeRequest, session: TokenizerSession,
                 tokenizer: Versioned) -> None:
        """Retrieve for the user's words and put the cited passages in front of them."""
        assert self._rag is not None and self.model.rag is not None
        query = _last_user_text(request.messages) if request.messages is not None else request.prompt or ""
        if not query.strip():
            prepared.notes.append("nothing to retrieve for: the prompt has no text")
            return
        rag = self._rag()
        self._on_instance(rag)
        try:
            with RagSession(rag.loaded.instantiate(), ChainedTokenizer(tokenizer.loaded)) as rag_session:
                augmented = rag_session.augment(query, self.model.rag.budget)
        except EmptyQuery:
            prepared.notes.append("nothing to retrieve for: the prompt has no text")
            return
        except GuestTrap as trap:
            raise ComponentFailed(rag, trap) from None
        prepared.notes.extend(augmented.notes)
        prepared.sources = [p.source.citation() for p in augmented.passages]
        if not augmented.passages:
            return
        if request.messages is not None:
            messages = _with_last_user_text(request.messages, augmented.prompt)
            text, ids = self._tokenize(session, messages, None)
        else:
            text, ids = self._tokenize(session, None, augmented.prompt)
        if len(ids) + prepared.max_tokens > self.model.context_window:
            raise ContextWindowExceeded(self.model, len(ids), prepared.max_tokens, augmented=True)
        prepared.text, prepared.ids = text, ids


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return message["content"]
    return ""


def _with_last_user_text(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    index = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    return [*messages[:index], {**messages[index], "content": text}, *messages[index + 1:]]
