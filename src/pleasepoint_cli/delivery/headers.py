"""Header values made safe and encoded by hand: RFC 2047 encoded words, quoted phrases, folding, addresses.

Python's `email` package builds a message at about 421 a second here and lets an RFC 2047-encoded CRLF
through (CVE-2024-6923). This module does the little that a bulk sender needs, fast, and refuses every value
that holds CR, LF or another control character, raw or once its encoded words are decoded.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pleasepoint_cli.errors import HeaderInjectionError, MessageError

LINE = 78  # RFC 5322's recommended line length (the hard limit is 998)
_WORD_OVERHEAD = len("=?utf-8?q?") + len("?=")
_MAX_WORD = 75  # RFC 2047: an encoded word is at most 75 characters

# Characters left as they are inside a Q-encoded word: safe in unstructured text and in phrases alike.
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_BYTE = tuple(chr(b) if b in _Q_SAFE else ("_" if b == 0x20 else f"={b:02X}") for b in range(256))
_Q_CHAR: dict[str, str] = {}

# Anything below space except tab, and DEL: never allowed in a header value, raw or decoded.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[qQbB]\?[^?\s]*\?=")
# RFC 5322 atext plus space: a display name made only of these needs no quoting.
_PLAIN_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")
# An addr-spec whose local part is a dot-atom (quoted local parts are legal but never seen in a shop's data).
_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)


def _describe(value: str) -> str:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return repr(shown)


def check_header_value(field: str, value: str) -> str:
    """The value, if no CR, LF or control character is in it, raw or inside an RFC 2047 encoded word.

    Raises HeaderInjectionError naming the field otherwise.
    """
    if _CONTROL.search(value):
        raise HeaderInjectionError(
            f"{field} {_describe(value)} contains a line break or control character: refused "
            "(it could forge headers)."
        )
    if "=?" in value and _CONTROL.search(decoded_text(value)):
        raise HeaderInjectionError(
            f"{field} {_describe(value)} holds an RFC 2047 encoded word that decodes to a line break or "
            "control character: refused (CVE-2024-6923)."
        )
    return value


def decoded_text(value: str) -> str:
    """A header value as a mail reader shows it: encoded words decoded (the standard library's decoder)."""
    from email.header import decode_header

    try:
        parts = decode_header(value)
    except Exception:  # a malformed encoded word: readers show it raw
        return value
    text: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            text.append(chunk.decode(charset or "ascii", errors="replace"))
        else:
            text.append(chunk)
    return "".join(text)


def check_emitted(field: str, value: str) -> None:
    """Check a header value as it will be written (folded, encoded): unfold it, decode it, refuse CR/LF.

    The last guard before bytes leave: whatever the encoder did, a reader can never see a line break.
    """
    unfolded = value.replace("\r\n ", " ").replace("\r\n\t", "\t")
    if "\r" in unfolded or "\n" in unfolded:
        raise HeaderInjectionError(f"{field}: an encoded value holds a bare line break: refused.")
    if "=?" in unfolded and _CONTROL.search(decoded_text(unfolded)):
        raise HeaderInjectionError(
            f"{field}: an encoded value decodes to a line break or control character: refused (CVE-2024-6923)."
        )


def _q(ch: str) -> str:
    encoded = _Q_CHAR.get(ch)
    if encoded is None:
        encoded = "".join(_Q_BYTE[b] for b in ch.encode("utf-8"))
        if len(_Q_CHAR) < 4096:
            _Q_CHAR[ch] = encoded
    return encoded


def encoded_words(text: str, first_room: int) -> str:
    """`text` as RFC 2047 Q-encoded UTF-8 words, split between characters (never inside one), each word
    at most 75 characters and every line at most 78: `first_room` is what the first line has left."""
    words: list[str] = []
    current: list[str] = []
    size = 0
    room = min(_MAX_WORD, max(first_room, _WORD_OVERHEAD + 12)) - _WORD_OVERHEAD
    last_space = -1
    for ch in text:
        piece = _q(ch)
        if current and size + len(piece) > room:
            # Prefer to end a word just after a space, so readers that keep the folding space between
            # encoded words (Python's own address parser does) show a double space, not a split name.
            cut = last_space + 1 if last_space >= 0 and len(current) - last_space < 16 else len(current)
            words.append("".join(current[:cut]))
            current = current[cut:]
            size = sum(len(p) for p in current)
            last_space = -1
            room = min(_MAX_WORD, LINE - 1) - _WORD_OVERHEAD
        if ch == " ":
            last_space = len(current)
        current.append(piece)
        size += len(piece)
    if current or not words:
        words.append("".join(current))
    return "\r\n ".join(f"=?utf-8?q?{w}?=" for w in words)


def fold_ascii(text: str, first_room: int) -> str:
    """Fold plain ASCII text at single spaces so lines stay within 78 characters where a space allows."""
    if len(text) <= first_room:
        return text
    lines: list[str] = []
    line = ""
    room = first_room
    for word in text.split(" "):
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= room:
            line += " " + word
        else:
            lines.append(line)
            line = word
            room = LINE - 1
    lines.append(line)
    return "\r\n ".join(lines)


@lru_cache(maxsize=8192)
def unstructured(field: str, value: str) -> str:
    """A Subject-like value, encoded only when it must be (non-ASCII, or text that a reader would otherwise
    decode as an encoded word); checked before and after encoding, cached (subjects repeat)."""
    check_header_value(field, value)
    first_room = LINE - len(field) - 2
    plain = value.isascii() and "=?" not in value and value.strip() == value and "  " not in value
    encoded = (
        fold_ascii(value, first_room) if plain and "\t" not in value else encoded_words(value, first_room)
    )
    check_emitted(field, encoded)
    return encoded


def phrase(field: str, name: str, first_room: int) -> str:
    """A display name: as it is, quoted, or as encoded words."""
    if not name:
        return ""
    if name.isascii() and "=?" not in name:
        if _PLAIN_PHRASE.fullmatch(name) and name.strip() == name and "  " not in name:
            return name
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return encoded_words(name, first_room)


def address(field: str, value: str) -> str:
    """A plain addr-spec (`local@domain`), checked; an internationalised domain becomes its A-label."""
    check_header_value(field, value)
    value = value.strip()
    if _ADDRESS.fullmatch(value):
        return value
    local, at, domain = value.rpartition("@")
    if at and local.isascii() and not domain.isascii():
        try:
            ascii_domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_domain = ""
        candidate = f"{local}@{ascii_domain}"
        if ascii_domain and _ADDRESS.fullmatch(candidate):
            return candidate
    raise MessageError(f"{field} {_describe(value)} is not an address this sender can use (local@domain).")


def mailbox(field: str, name: str, addr: str) -> str:
    """`Name <local@domain>` (the name encoded as needed) or just the address when there is no name."""
    check_header_value(field, name)
    spec = address(field, addr)
    name = " ".join(name.split())
    if not name:
        return spec
    shown = phrase(field, name, LINE - len(field) - 2)
    # Length of the line the address would join: the last folded line, or the first with "To: ".
    last = len(shown) - shown.rindex("\r\n") - 2 if "\r\n" in shown else len(field) + 2 + len(shown)
    separator = " " if last + len(spec) + 3 <= LINE else "\r\n "
    return f"{shown}{separator}<{spec}>"


@lru_cache(maxsize=64)
def parse_mailbox(field: str, value: str) -> tuple[str, str]:
    """(display name, address) of a configured `Name <addr>` or `addr` (From, Reply-To), checked."""
    from email.utils import parseaddr

    check_header_value(field, value)
    name, addr = parseaddr(value)
    if not addr:
        raise MessageError(f"{field} {_describe(value)} is not an address.")
    return name, address(field, addr)


def check_header_template(field: str, source: str) -> str | None:
    """A problem (for `campaign validate`) when a header template (subject, from, reply-to) could put a line
    break into a header: CR, LF or a control character in its text, or encoded-word syntax (`=?`) anywhere
    in its literal text, where customer data could complete an encoded CRLF. None when it is safe.
    """
    try:
        import jinja2
        from jinja2 import nodes

        literals: list[str] = []
        tree = jinja2.Environment().parse(source)
        for node in tree.find_all((nodes.TemplateData, nodes.Const)):
            value = node.data if isinstance(node, nodes.TemplateData) else getattr(node, "value", None)
            if isinstance(value, str):
                literals.append(value)
    except Exception:  # the template's own errors are reported by the template check
        literals = [source]
    for text in (source, *literals):
        if _CONTROL.search(text):
            return f"{field} {_describe(text)} contains a line break or control character."
        if "=?" in text:
            return (
                f"{field} {_describe(text)} contains RFC 2047 encoded-word syntax ('=?'): write the text "
                "itself, pleasepoint encodes it (encoded words in a template could forge headers)."
            )
    return None
