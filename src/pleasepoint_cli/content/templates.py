"""MJML + Jinja templates: MJML is compiled once per template, then the compiled HTML is a Jinja template
rendered per recipient (autoescaped, undefined variables are errors), with a plain-text part beside it.

Errors name the template file and line: the MJML source is itself parsed (and, to locate a failing render,
rendered) as a Jinja template, so line numbers refer to the `.mjml` file, not to the compiled HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pleasepoint_cli.errors import TemplateError

if TYPE_CHECKING:
    import jinja2

JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
"""A Jinja expression, statement or comment."""

_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}
_NBSP = "\u00a0"


# --- Jinja environments -------------------------------------------------------------------------------


def _finalize(value: Any) -> Any:
    """Print None as nothing: an empty field (no phone, no store) is blank, not the word `None`."""
    return "" if value is None else value


def format_money(value: Any, currency: str = "EUR") -> str:
    """A price the Spanish way: `1.234,50 €` (empty for a missing value)."""
    if value is None or value == "":
        return ""
    amount = f"{float(value):,.2f}".replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return f"{amount}{_NBSP}{_CURRENCY_SYMBOLS.get(currency, currency)}"


def add_utm(url: str, params: Mapping[str, str]) -> str:
    """The URL with the UTM parameters appended (http/https only; parameters already present are kept)."""
    if not params:
        return url
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return url
    present = {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = [(key, value) for key, value in params.items() if key not in present]
    if not extra:
        return url
    query = parts.query + ("&" if parts.query else "") + urlencode(extra)
    return urlunsplit(parts._replace(query=query))


def _environment(*, autoescape: bool, utm: Mapping[str, str]) -> jinja2.Environment:
    """A strict, sandboxed Jinja environment: undefined variables raise, None prints as nothing, `money` and
    `utm`. Templates and subjects are written by marketing staff, not by whoever runs the tool, so they render
    in Jinja's immutable sandbox: no `__class__`/`__globals__` walks to Python internals, no calls of unsafe
    callables, no mutating the context's lists and dicts (a SecurityError, reported as a TemplateError)."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from markupsafe import Markup, escape

    env = ImmutableSandboxedEnvironment(
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        keep_trailing_newline=True,
    )
    tagged = lru_cache(maxsize=8192)(lambda url: add_utm(url, utm))

    @jinja2.pass_context
    def utm_filter(context: jinja2.runtime.Context, value: Any) -> Any:
        url = value.unescape() if isinstance(value, Markup) else str(value)
        if url == context.get("unsubscribe_url"):
            return value
        tagged_url: str = tagged(url)
        return escape(tagged_url) if isinstance(value, Markup) else tagged_url

    @jinja2.pass_context
    def money_filter(context: jinja2.runtime.Context, value: Any, currency: str | None = None) -> str:
        return format_money(value, currency or str(context.get("currency") or "EUR"))

    env.filters["utm"] = utm_filter
    env.filters["money"] = money_filter
    return env


def _compile_jinja(env: jinja2.Environment, source: str, filename: str, shown: str) -> jinja2.Template:
    """Compile a Jinja template whose frames carry `filename`; syntax errors name `shown:line`."""
    import jinja2

    try:
        code = env.compile(source, name=filename, filename=filename)
    except jinja2.TemplateSyntaxError as e:
        raise TemplateError(f"{shown}:{e.lineno}: {e.message}") from e
    return jinja2.Template.from_code(env, code, env.make_globals(None))


def _line_in(error: BaseException, filename: str) -> int | None:
    """The template line where a render error happened, from Jinja's rewritten traceback."""
    line = None
    tb: TracebackType | None = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _explain(error: BaseException) -> str:
    """A render error in words, with the fix for the common one (an undefined variable)."""
    import jinja2
    from jinja2.exceptions import SecurityError

    if isinstance(error, SecurityError):
        return f"refused by the template sandbox: {str(error).rstrip('.')}. Templates may only read the context variables."
    if isinstance(error, jinja2.UndefinedError):
        return (
            f"undefined variable: {error.message}. Check its spelling against the context variables in "
            "docs/campaigns.md, or guard it with `is defined`."
        )
    return f"{type(error).__name__}: {error}"


# --- One-line templates: subject and preheader --------------------------------------------------------


@dataclass(frozen=True)
class LineTemplate:
    """A one-line Jinja template (subject, preheader): plain text, never HTML, whitespace folded to spaces."""

    where: str
    template: jinja2.Template
    source: str = ""

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its source, compiled again on load (a send's render worker processes receive it)."""
        return (compile_line, (self.source, self.where))

    def render(self, context: Mapping[str, Any]) -> str:
        """Render; CR, LF and runs of spaces become one space, so a value can never start a new header."""
        try:
            text = self.template.render(context)
        except Exception as e:
            raise TemplateError(f"{self.where}: {_explain(e)}") from e
        return " ".join(text.split())


def compile_line(source: str, where: str) -> LineTemplate:
    """Compile a subject or preheader; `where` (`file:line: field`) prefixes its errors."""
    import jinja2

    env = _environment(autoescape=False, utm={})
    try:
        template = env.from_string(source)
    except jinja2.TemplateSyntaxError as e:
        raise TemplateError(f"{where}: {e.message}") from e
    return LineTemplate(where, template, source)


# --- The MJML template --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledTemplate:
    """An MJML template compiled once: the HTML and text parts as Jinja templates, ready per recipient."""

    path: Path
    html_source: str
    text_source: str
    text_path: Path | None
    _html: jinja2.Template
    _text: jinja2.Template
    _source: jinja2.Template
    source: str = ""
    """The MJML template's own text (Jinja and MJML), as read."""
    utm: tuple[tuple[str, str], ...] = ()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its sources (the MJML text, the compiled HTML and the text part), so a render worker
        process compiles the very Jinja templates this one holds, without reading files or running MJML."""
        return (
            _restore_template,
            (self.path, self.source, self.html_source, self.text_source, self.text_path, self.utm),
        )

    @property
    def _html_name(self) -> str:
        return f"{self.path} (compiled)"

    @property
    def _text_name(self) -> str:
        return str(self.text_path) if self.text_path else f"{self.path} (text part)"

    def render(self, context: Mapping[str, Any]) -> tuple[str, str]:
        """The recipient's HTML and plain text; a failure names the template file and line."""
        try:
            body = self._html.render(context)
        except Exception as e:
            raise self._locate(e, context) from e
        try:
            text = self._text.render(context)
        except Exception as e:
            line = _line_in(e, self._text_name)
            where = f"{self._text_name}:{line}" if line else self._text_name
            raise TemplateError(f"{where}: {_explain(e)}") from e
        return body, tidy_text(text, indented=self.text_path is not None)

    def check_source(self, context: Mapping[str, Any]) -> None:
        """Render the MJML source itself with Jinja, so a problem is reported on its `.mjml` line."""
        try:
            self._source.render(context)
        except Exception as e:
            line = _line_in(e, str(self.path))
            raise TemplateError(f"{self.path}:{line or 1}: {_explain(e)}") from e

    def _locate(self, error: Exception, context: Mapping[str, Any]) -> TemplateError:
        """Turn a render error of the compiled HTML into one on the MJML source line."""
        try:
            self._source.render(context)
        except Exception as source_error:
            if (line := _line_in(source_error, str(self.path))) is not None:
                return TemplateError(f"{self.path}:{line}: {_explain(source_error)}")
        line = _line_in(error, self._html_name)
        return TemplateError(f"{self.path}: {_explain(error)} (line {line or '?'} of the compiled HTML)")


def compile_template(path: Path, *, utm: Mapping[str, str] | None = None) -> CompiledTemplate:
    """Compile an MJML template once: Jinja syntax, MJML, UTM-tagged links, and its text part.

    The text part is `<name>.txt` beside the template when it exists, else derived from the HTML (readable
    text, links as `text (url)`), itself a Jinja template so it costs nothing per recipient.
    """
    import mjml

    utm = dict(utm or {})
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise TemplateError(f"{path}: no such template file. Check the path (relative to the YAML).") from e
    except UnicodeDecodeError as e:
        raise TemplateError(f"{path}: not UTF-8 text ({e}). Save it as UTF-8.") from e
    html_env = _environment(autoescape=True, utm=utm)
    source_template = _compile_jinja(html_env, source, str(path), str(path))
    try:
        compiled = mjml.mjml2html(source)
    except (ValueError, RuntimeError) as e:
        raise TemplateError(_mjml_problem(path, source, str(e))) from e
    _check_tags_survived(path, source, compiled)
    compiled = rewrite_links(compiled, lambda value: _tag_link(value, utm))
    html_template = _compile_jinja(html_env, compiled, f"{path} (compiled)", f"{path} (compiled HTML)")

    text_env = _environment(autoescape=False, utm=utm)
    text_path: Path | None = path.with_suffix(".txt")
    if text_path is not None and text_path.exists():
        text_source = text_path.read_text(encoding="utf-8")
        text_template = _compile_jinja(text_env, text_source, str(text_path), str(text_path))
    else:
        text_path = None
        text_source = html_to_text(compiled)
        text_template = _compile_jinja(text_env, text_source, f"{path} (text part)", f"{path} (text part)")
    return CompiledTemplate(
        path=path,
        html_source=compiled,
        text_source=text_source,
        text_path=text_path,
        _html=html_template,
        _text=text_template,
        _source=source_template,
        source=source,
        utm=tuple(utm.items()),
    )


def _restore_template(
    path: Path,
    source: str,
    html_source: str,
    text_source: str,
    text_path: Path | None,
    utm: tuple[tuple[str, str], ...],
) -> CompiledTemplate:
    """A CompiledTemplate from its pickled sources: the same Jinja compilation as `compile_template`."""
    html_env = _environment(autoescape=True, utm=dict(utm))
    text_env = _environment(autoescape=False, utm=dict(utm))
    html_name = f"{path} (compiled)"
    text_name = str(text_path) if text_path is not None else f"{path} (text part)"
    return CompiledTemplate(
        path=path,
        html_source=html_source,
        text_source=text_source,
        text_path=text_path,
        _html=_compile_jinja(html_env, html_source, html_name, html_name),
        _text=_compile_jinja(text_env, text_source, text_name, text_name),
        _source=_compile_jinja(html_env, source, str(path), str(path)),
        source=source,
        utm=utm,
    )


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _mjml_problem(path: Path, source: str, engine_message: str) -> str:
    """Explain an MRML failure, pointing at the likely line (a `<` inside a Jinja tag, an unclosed tag)."""
    for match in JINJA_TAG.finditer(source):
        if "<" in match.group(0):
            return (
                f"{path}:{_line_at(source, match.start())}: MJML does not compile ({engine_message}): "
                f"`{match.group(0)}` has a `<` inside a Jinja tag, which MRML cannot parse; write it with `>` "
                "(`b > a` instead of `a < b`)."
            )
    balance = _TagBalance()
    balance.feed(JINJA_TAG.sub(lambda m: " " * len(m.group(0)), source))
    balance.close()
    if balance.problem:
        line, message = balance.problem
        return f"{path}:{line}: MJML does not compile ({engine_message}): {message}"
    return f"{path}: MJML does not compile: {engine_message}. Check that every tag is closed and nested."


_HTML_VOID = frozenset(
    ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr")
)
_VOID = _HTML_VOID | {
    "mj-image",
    "mj-divider",
    "mj-spacer",
    "mj-breakpoint",
    "mj-font",
    "mj-all",
    "mj-class",
    "mj-social-element",
    "mj-carousel-image",
}


class _TagBalance(HTMLParser):
    """Finds the first unbalanced tag of an MJML document, with its line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, int]] = []
        self.problem: tuple[int, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _VOID:
            self.stack.append((tag, self.getpos()[0]))

    def handle_endtag(self, tag: str) -> None:
        if self.problem or tag in _VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            opened = (
                f" (<{self.stack[-1][0]}> from line {self.stack[-1][1]} is still open)" if self.stack else ""
            )
            self.problem = (self.getpos()[0], f"</{tag}> closes nothing that is open{opened}.")
            return
        self.stack.pop()

    def close(self) -> None:
        super().close()
        if not self.problem and self.stack:
            tag, line = self.stack[-1]
            self.problem = (line, f"<{tag}> is never closed.")


def _normal_tag(tag: str) -> str:
    return " ".join(tag.split())


def _check_tags_survived(path: Path, source: str, compiled: str) -> None:
    """Every Jinja expression and statement of the source must reach the compiled HTML unchanged."""
    kept = {_normal_tag(m.group(0)) for m in JINJA_TAG.finditer(compiled)}
    for match in JINJA_TAG.finditer(source):
        tag = match.group(0)
        if tag.startswith("{#") or _normal_tag(tag) in kept:
            continue
        raise TemplateError(
            f"{path}:{_line_at(source, match.start())}: MJML dropped or altered `{tag}`. Put Jinja tags that "
            "sit between MJML components inside <mj-raw>, and write attributes with double quotes "
            "outside and single quotes inside Jinja (`alt=\"{{ x | default('y') }}\"`)."
        )


# --- Links ---------------------------------------------------------------------------------------------


def _skip_jinja(text: str, i: int) -> int:
    """If a Jinja tag starts at i, the index just after it; else i."""
    if text.startswith(("{{", "{%", "{#"), i):
        closer = {"{": "}}", "%": "%}", "#": "#}"}[text[i + 1]]
        end = text.find(closer, i + 2)
        return len(text) if end < 0 else end + 2
    return i


def _quoted_end(text: str, i: int, quote: str) -> int:
    """The index of the closing quote of a value starting at i, stepping over Jinja tags."""
    while i < len(text):
        j = _skip_jinja(text, i)
        if j != i:
            i = j
            continue
        if text[i] == quote:
            return i
        i += 1
    return len(text)


_ANCHOR = re.compile(r"<a\b", re.IGNORECASE)
_HREF = re.compile(r"\bhref\s*=\s*([\"'])", re.IGNORECASE)


def rewrite_links(document: str, rewrite: Callable[[str], str]) -> str:
    """Apply `rewrite` to the raw (HTML-escaped, maybe Jinja) href value of every <a> tag."""
    out: list[str] = []
    pos = 0
    for match in _ANCHOR.finditer(document):
        if match.start() < pos:
            continue
        # Find the end of the tag, stepping over quoted values and Jinja tags.
        i = match.end()
        href: tuple[int, int] | None = None
        while i < len(document) and document[i] != ">":
            j = _skip_jinja(document, i)
            if j != i:
                i = j
                continue
            if document[i] in "\"'":
                end = _quoted_end(document, i + 1, document[i])
                attr = _HREF.search(document, match.end(), i + 1)
                if attr and attr.end() == i + 1 and href is None:
                    href = (i + 1, end)
                i = end + 1
                continue
            i += 1
        if href is not None:
            out.append(document[pos : href[0]])
            out.append(rewrite(document[href[0] : href[1]]))
            pos = href[1]
    out.append(document[pos:])
    return "".join(out)


def _tag_link(value: str, utm: Mapping[str, str]) -> str:
    """UTM-tag one href: static URLs now, Jinja ones by the `utm` filter at render time."""
    if not utm:
        return value
    if JINJA_TAG.search(value) is None:
        return html.escape(add_utm(html.unescape(value), utm), quote=True)
    if _normal_tag(value) == "{{ unsubscribe_url }}":
        return value
    return "{% filter utm %}" + value + "{% endfilter %}"


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"a": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted:
                self.links.append((f"<{tag} {name}>", value or ""))


def link_problems(document: str) -> list[str]:
    """Links and images of a rendered email that are not absolute https (mailto: allowed for links)."""
    collector = _LinkCollector()
    collector.feed(document)
    collector.close()
    problems = []
    for where, url in collector.links:
        scheme = urlsplit(url).scheme.lower()
        if scheme == "https" and urlsplit(url).netloc:
            continue
        if where.startswith("<a") and scheme == "mailto":
            continue
        problems.append(f"{where} {url!r} is not an absolute https URL")
    return problems


# --- The plain-text part --------------------------------------------------------------------------------

_SKIPPED = frozenset({"head", "style", "script", "title", "template"})
_BLOCKS = frozenset(
    {"p", "div", "br", "tr", "table", "tbody", "thead", "tfoot", "ul", "ol", "li", "hr", "section", "pre"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "article", "header", "footer", "blockquote", "center"}
)
_SPACES = re.compile(r"\s+")


def _collapse(data: str) -> str:
    """Whitespace runs to one space, except inside Jinja tags (whose string literals must stay intact)."""
    parts: list[str] = []
    last = 0
    for match in JINJA_TAG.finditer(data):
        parts.append(_SPACES.sub(" ", data[last : match.start()]))
        parts.append(match.group(0))
        last = match.end()
    parts.append(_SPACES.sub(" ", data[last:]))
    return "".join(parts)


class _TextMaker(HTMLParser):
    """HTML (with Jinja tags) to readable text (with the same Jinja tags): blocks on lines, links with URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []
        self.links: list[tuple[str | None, int, list[str]]] = []
        self.text_links: set[str] = set()
        self.image_links: list[tuple[int, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if self.skipping:
            if tag not in _HTML_VOID:
                self.skipping.append(tag)
            return
        style = (attributes.get("style") or "").replace(" ", "").lower()
        if tag in _SKIPPED or "display:none" in style:
            if tag not in _HTML_VOID:
                self.skipping.append(tag)
            return
        if tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        elif tag == "hr":
            self.parts.append("----------\n")
        elif tag == "a":
            self.links.append((attributes.get("href"), len(self.parts), []))
        elif tag == "img" and self.links and (alt := attributes.get("alt")):
            self.links[-1][2].append(alt)
        elif tag == "td":
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _HTML_VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
            return
        if tag == "a" and self.links:
            href, start, alts = self.links.pop()
            text = " ".join("".join(self.parts[start:]).split())
            del self.parts[start:]
            url = (href or "").strip()
            if not text and url and not url.startswith("#"):
                # An image link: resolved in `text()`, dropped when a text link has the same URL.
                self.image_links.append((len(self.parts), " ".join(alts), url))
                self.parts.append("")
                return
            if not url or url.startswith("#"):
                self.parts.append(text)
                return
            self.text_links.add(url)
            self.parts.append(url if text == url else f"{text} ({url})")
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(_collapse(data))

    def text(self) -> str:
        """The text, with image-only links as `alt (url)` unless a text link already gives that URL."""
        for index, alt, url in self.image_links:
            if url not in self.text_links:
                self.parts[index] = f"{alt} ({url})" if alt else url
        return "".join(self.parts)


def html_to_text(document: str) -> str:
    """Readable plain text of an HTML document (Jinja tags pass through untouched)."""
    maker = _TextMaker()
    maker.feed(document)
    maker.close()
    return tidy_text(maker.text())


_TRAILING = re.compile(r"[ \t\u00a0]+\n")
_LEADING = re.compile(r"\n[ \t]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def tidy_text(text: str, *, indented: bool = False) -> str:
    """No spaces at line ends (nor starts, unless `indented`), at most one blank line in a row, one final
    newline."""
    text = _TRAILING.sub("\n", text)
    if not indented:
        text = _LEADING.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip() + "\n"
