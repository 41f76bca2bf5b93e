"""The PoP server: an OpenAI-compatible endpoint that tokenizes, checks and augments
prompts next to the user and forwards only what the model needs to a faraway origin.

config      pop.toml: models, origins, API keys and quotas, admin tokens
chat        chat templates, rendered as Hugging Face renders them
quota       per-API-key token quotas
origins     forwarding to an origin: OpenAI-compatible servers, `edgepop origin`, the demo
pipeline    one request: tokenize -> early checks -> retrieve/augment -> forward, timed
demo_origin the built-in stand-in for a model: a deterministic echo that says what it got
metrics     Prometheus metrics
app         the ASGI application tying them to routes
"""
