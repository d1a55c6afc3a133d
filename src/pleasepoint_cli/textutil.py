"""Small text helpers shared across modules: slugs for keys and file names, SQL identifier quoting."""

from __future__ import annotations

import re
import unicodedata


def slugify(text: str, separator: str = "_") -> str:
    """ASCII slug of a label: `Bebé y niño` -> `bebe_y_nino`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", separator, ascii_text.lower()).strip(separator)
    return slug or "x"


def quote_ident(name: str) -> str:
    """A SQL identifier, double-quoted, safe for any column name found in a file."""
    return '"' + name.replace('"', '""') + '"'
