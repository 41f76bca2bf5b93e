"""The knowledge base for RAG, native in the host: chunking, the embedding model, the index on disk.

onnxruntime is loaded here, before any module of the package loads usearch: usearch's
extension carries its own static libstdc++, and once it has set up the C++ locale an
onnxruntime loaded after it crashes while initializing (SIGSEGV in std::codecvt).
In this order both work. Code outside the package that imports usearch itself should
import edgepop.kb (or onnxruntime) first.
"""

import onnxruntime  # noqa: F401  (load order; see above)
