"""Real text no one on the team wrote, read from what is installed on the machine.

Conformance and benchmarks run on two corpora: source code (the CPython standard
library this interpreter ships with) and multilingual prose (the translated messages in
the gettext catalogs under /usr/share/locale, which Debian's packages, iso-codes among
them, install in well over a hundred languages). Both are read at run time, never
copied into the repository.
"""

from __future__ import annotations

import re
import struct
import sysconfig
from dataclasses import dataclass
from pathlib import Path

LOCALE_DIR = Path("/usr/share/locale")

# Scripts the multilingual corpus must cover: CJK, Arabic, Devanagari and Thai at least.
REQUIRED_LANGUAGES = ("zh_CN", "ja", "ko", "ar", "hi", "th")


@dataclass(frozen=True)
class Document:
    """One text of a corpus and where it came from."""

    source: str
    text: str


def code_corpus(min_bytes: int = 5_000_000, root: Path | None = None) -> list[Document]:
    """Python source files of the standard library, in path order, until min_bytes of UTF-8.

    Files that are not valid UTF-8 are skipped (a handful of tests keep latin-1 on purpose).
    """
    root = root or Path(sysconfig.get_paths()["stdlib"])
    docs: list[Document] = []
    total = 0
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts:
            continue
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        docs.append(Document(str(path.relative_to(root)), text))
        total += len(data)
        if total >= min_bytes:
            return docs
    raise RuntimeError(f"the standard library at {root} has only {total} bytes of UTF-8 source; need {min_bytes}")


def read_mo(path: Path) -> list[str]:
    """The translated strings (msgstr) of a compiled gettext catalog, decoded by its charset."""
    data = path.read_bytes()
    if len(data) < 28:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic == 0x950412DE else ">" if magic == 0xDE120495 else None
    if order is None:
        return []
    _, count, ids_at, strs_at = struct.unpack(order + "4I", data[4:20])
    entries: list[tuple[bytes, bytes]] = []
    for i in range(count):
        id_len, id_off = struct.unpack(order + "2I", data[ids_at + 8 * i: ids_at + 8 * i + 8])
        str_len, str_off = struct.unpack(order + "2I", data[strs_at + 8 * i: strs_at + 8 * i + 8])
        entries.append((data[id_off: id_off + id_len], data[str_off: str_off + str_len]))
    charset = "utf-8"
    for msgid, msgstr in entries:
        if msgid == b"":
            found = re.search(rb"charset=([-\w]+)", msgstr)
            if found:
                charset = found.group(1).decode("ascii")
    texts = []
    for msgid, msgstr in entries:
        if msgid == b"" or not msgstr:
            continue
        try:
            decoded = msgstr.decode(charset)
        except (UnicodeDecodeError, LookupError):
            return []
        # Plural forms are NUL-separated inside one msgstr.
        texts.extend(part for part in decoded.split("\x00") if part.strip())
    return texts


def multilingual_corpus(
    bytes_per_language: int = 64_000,
    min_bytes: int = 4_000,
    locale_dir: Path = LOCALE_DIR,
) -> dict[str, str]:
    """Translated messages per language (locale directory name), up to bytes_per_language each.

    Languages with less than min_bytes of text are left out.
    """
    corpus: dict[str, str] = {}
    if not locale_dir.is_dir():
        return corpus
    for lang_dir in sorted(p for p in locale_dir.iterdir() if p.is_dir()):
        parts: list[str] = []
        size = 0
        for mo in sorted((lang_dir / "LC_MESSAGES").glob("*.mo")):
            for text in read_mo(mo):
                parts.append(text)
                size += len(text.encode("utf-8")) + 1
                if size >= bytes_per_language:
                    break
            if size >= bytes_per_language:
                break
        if size >= min_bytes:
            corpus[lang_dir.name] = "\n".join(parts)
    return corpus
