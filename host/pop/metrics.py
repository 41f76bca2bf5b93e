"""Prometheus metrics of one PoP, in a registry of its own (so several apps can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Edge work is milliseconds; forwarding can take seconds.
_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.stage_seconds = Histogram(
            "edgepop_stage_seconds", "Time per pipeline stage (tokenize, check, augment, forward, request).",
            ["stage", "model"], buckets=_BUCKETS, registry=r)
        self.tokens_in = Counter("edgepop_prompt_tokens", "Prompt tokens sent to origins.", ["model"], registry=r)
        self.tokens_out = Counter("edgepop_completion_tokens", "Completion tokens origins answered with.",
                                  ["model"], registry=r)
        self.bytes_forwarded = Counter("edgepop_forwarded_bytes", "Request bytes sent to origins.",
                                       ["model", "origin"], registry=r)
        self.bytes_as_text = Counter(
            "edgepop_forwarded_as_text_bytes", "What the same requests would have been with the prompt "
            "as JSON text.", ["model", "origin"], registry=r)
        # A gauge, not a counter: ids as a JSON list can be larger than the text they encode.
        self.bytes_saved = Gauge("edgepop_saved_bytes", "as_text minus forwarded bytes, summed.",
                                 ["model", "origin"], registry=r)
        self.instantiations = Counter("edgepop_instantiations", "Component instances handed to requests.",
                                      ["component", "version"], registry=r)
        self.traps = Counter("edgepop_traps", "Guest traps, deadlines and memory limits included.",
                             ["component", "version", "kind"], registry=r)
        self.limits_hit = Counter("edgepop_limits_hit", "Requests refused at the edge.", ["model", "limit"],
                                  registry=r)
        self.requests = Counter("edgepop_requests", "Requests answered, by route and status.",
                                ["route", "status"], registry=r)
        self.origin_errors = Counter("edgepop_origin_errors", "Failed attempts to reach an origin.",
                                     ["origin", "kind"], registry=r)
