"""The default config's demo knowledge base: two standard-library packages, built on first use.

It is edgepop's own artefact under build/, so it is also built again when the one there
was made with another embedding model than the host's (after an upgrade): the host would
refuse to load it, and nothing in it is the user's.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from ..kb.builder import build
from ..kb.embedder import MODEL_NAME, Embedder
from ..kb.store import MANIFEST, KnowledgeBaseError, Manifest

# The standard-library packages it is built from.
DEMO_KB_PACKAGES = ("json", "urllib")


def ensure_demo_kb(kb_dir: Path) -> None:
    """Build the demo knowledge base at `kb_dir`, unless one built with the host's model is there."""
    reason = _why_build(kb_dir)
    if reason is None:
        return
    print(f"building the demo knowledge base {kb_dir} ({reason}) from the standard library's "
          f"{', '.join(DEMO_KB_PACKAGES)}", flush=True)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    build([stdlib / name for name in DEMO_KB_PACKAGES], kb_dir, embedder=Embedder())


def _why_build(kb_dir: Path) -> str | None:
    if not (kb_dir / MANIFEST).exists():
        return "once"
    try:
        model = Manifest.read(kb_dir / MANIFEST).model
    except KnowledgeBaseError:
        return None  # damaged: loading it names what is wrong; rebuilding would hide that
    return None if model == MODEL_NAME else f"the one there was built with {model}, not {MODEL_NAME}"
