"""Benchmarks share one process; HF tokenizers is held to one thread for a fair comparison."""

import os

# Set before anything imports tokenizers: the reference runs single-threaded, like the guest.
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
