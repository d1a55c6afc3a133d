"""MJML compiled once, Jinja per recipient: escaping, strict variables with .mjml line numbers, text part, UTM."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pleasepoint_cli.content.templates import (
    add_utm,
    compile_line,
    compile_template,
    format_money,
    html_to_text,
    link_problems,
)
from pleasepoint_cli.errors import TemplateError

TEMPLATE = """\
<mjml lang="es">
  <mj-head>
    <mj-title>{{ subject }}</mj-title>
    <mj-preview>{{ preheader }}</mj-preview>
  </mj-head>
  <mj-body>
    <mj-section><mj-column>
      <mj-text>Hola {{ salutation }} {{ first_name }}, ¿qué tal? Añoranza &amp; cía.</mj-text>
      <mj-button href="https://tienda.example/ofertas?x=1">Ver ofertas</mj-button>
    </mj-column></mj-section>
    <mj-raw>{% for p in products %}</mj-raw>
    <mj-section><mj-column>
      <mj-image src="{{ p.image_url }}" href="{{ p.url }}" alt="{{ p.name }}" />
      <mj-text>{{ p.name }}: {{ p.offer_price | money }}{% if p.price > p.offer_price %} (antes {{ p.price | money }}){% endif %}</mj-text>
      <mj-button href="{{ p.url }}">Comprar</mj-button>
    </mj-column></mj-section>
    <mj-raw>{% endfor %}</mj-raw>
    <mj-section><mj-column>
      <mj-text>{{ signature }} · <a href="{{ unsubscribe_url }}">Darse de baja</a> · <a href="mailto:hola@tienda.example">Escríbenos</a></mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>
"""

UTM = {"utm_source": "pleasepoint", "utm_medium": "email", "utm_campaign": "prueba"}


def _context(**overrides: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "subject": "Ofertas <para> ti",
        "preheader": "Tres ofertas",
        "salutation": "Sra.",
        "first_name": "María José",
        "products": [
            {
                "name": "Aceite ñ",
                "url": "https://tienda.example/p/1?a=1&b=2",
                "price": 10.0,
                "offer_price": 8.5,
                "image_url": "https://tienda.example/i/1.jpg",
            },
            {
                "name": "Pan",
                "url": "https://tienda.example/p/2",
                "price": 2.0,
                "offer_price": 2.0,
                "image_url": "https://tienda.example/i/2.jpg",
            },
        ],
        "signature": "Laura",
        "unsubscribe_url": "https://tienda.example/baja?c=1&t=x",
        "currency": "EUR",
    }
    context.update(overrides)
    return context


def _write(tmp_path: Path, text: str, name: str = "plantilla.mjml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class _Strict(HTMLParser):
    """Records the tag stack; complains about end tags that close nothing open."""

    VOID = {"meta", "link", "img", "br", "hr", "input", "col", "area", "base", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.seen: set[str] = set()
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)  # <img ... />: opens and closes itself

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> with {self.stack[-3:]} open")
        else:
            self.stack.pop()


def test_renders_escaped_html_and_a_text_part(tmp_path: Path) -> None:
    template = compile_template(_write(tmp_path, TEMPLATE))
    html, text = template.render(_context(first_name="<script>alert(1)</script>"))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<title>Ofertas &lt;para&gt; ti</title>" in html
    assert "¿qué tal? Añoranza &amp; cía." in html
    parser = _Strict()
    parser.feed(html)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    assert {"html", "head", "body"} <= parser.seen
    # The text part: readable, unescaped, links as "text (url)", the hidden preheader left out.
    assert "Hola Sra. <script>alert(1)</script>, ¿qué tal? Añoranza & cía." in text
    assert "Comprar (https://tienda.example/p/1?a=1&b=2)" in text
    assert "Aceite ñ: 8,50\u00a0€ (antes 10,00\u00a0€)" in text
    assert "Pan: 2,00\u00a0€\n" in text
    assert "Darse de baja (https://tienda.example/baja?c=1&t=x)" in text
    assert "Escríbenos (mailto:hola@tienda.example)" in text
    assert "Tres ofertas" not in text and "{{" not in text and "{%" not in text
    # An image link whose URL a text link also gives is not repeated in the text.
    assert text.count("https://tienda.example/p/2") == 1


def test_a_txt_template_beside_the_mjml_is_the_text_part(tmp_path: Path) -> None:
    path = _write(tmp_path, TEMPLATE)
    _write(
        tmp_path,
        "{{ salutation }} {{ first_name }}:\n  {% for p in products %}{{ p.name }} {% endfor %}\n",
        "plantilla.txt",
    )
    _, text = compile_template(path).render(_context(first_name="<b>Ana</b>"))
    assert text == "Sra. <b>Ana</b>:\n  Aceite ñ Pan\n"


def test_an_undefined_variable_names_the_mjml_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, TEMPLATE.replace("{{ signature }}", "{{ firma }}"))
    template = compile_template(path)
    with pytest.raises(TemplateError, match=rf"{path}:19: undefined variable: 'firma' is undefined"):
        template.render(_context())
    with pytest.raises(TemplateError, match=rf"{path}:19: "):
        template.check_source(_context())
    missing_key = _write(tmp_path, TEMPLATE.replace("{{ p.name }}:", "{{ p.nombre }}:"), "otra.mjml")
    with pytest.raises(TemplateError, match=rf"{missing_key}:14: undefined variable: .*'nombre'"):
        compile_template(missing_key).render(_context())


def test_jinja_syntax_errors_name_the_mjml_line(tmp_path: Path) -> None:
    path = _write(tmp_path, TEMPLATE.replace("{% endfor %}", "{% endfo %}"))
    with pytest.raises(TemplateError, match=rf"{path}:17: .*endfo"):
        compile_template(path)


def test_mjml_that_does_not_compile_points_at_the_problem(tmp_path: Path) -> None:
    less_than = _write(tmp_path, TEMPLATE.replace("p.price > p.offer_price", "p.offer_price < p.price"))
    with pytest.raises(
        TemplateError, match=rf"{less_than}:14: MJML does not compile .*`<` inside a Jinja tag"
    ):
        compile_template(less_than)
    unclosed = _write(
        tmp_path,
        TEMPLATE.replace(
            "</mj-column></mj-section>\n    <mj-raw>{% for", "</mj-section>\n    <mj-raw>{% for"
        ),
        "roto.mjml",
    )
    with pytest.raises(TemplateError, match=rf"{unclosed}:\d+: MJML does not compile"):
        compile_template(unclosed)
    with pytest.raises(TemplateError, match="no such template file"):
        compile_template(tmp_path / "no-existe.mjml")


def test_a_jinja_tag_mjml_alters_is_reported_on_its_line(tmp_path: Path) -> None:
    # MRML rewrites single-quoted attributes with double quotes inside as \" : the expression would break.
    path = _write(tmp_path, TEMPLATE.replace('alt="{{ p.name }}"', "alt='{{ p.name | default(\"x\") }}'"))
    with pytest.raises(TemplateError, match=rf"{path}:13: MJML dropped or altered"):
        compile_template(path)


def test_utm_parameters_on_every_http_link_but_unsubscribe_and_mailto(tmp_path: Path) -> None:
    template = compile_template(_write(tmp_path, TEMPLATE), utm=UTM)
    html, text = template.render(_context())
    tagged = "utm_source=pleasepoint&amp;utm_medium=email&amp;utm_campaign=prueba"
    assert f'href="https://tienda.example/ofertas?x=1&amp;{tagged}"' in html
    assert f'href="https://tienda.example/p/1?a=1&amp;b=2&amp;{tagged}"' in html
    assert f'href="https://tienda.example/p/2?{tagged}"' in html
    assert 'href="https://tienda.example/baja?c=1&amp;t=x"' in html
    assert 'href="mailto:hola@tienda.example"' in html
    assert 'src="https://tienda.example/i/1.jpg"' in html  # images are not links
    assert 'fonts.googleapis.com/css?family=Ubuntu:300,400,500,700"' in html  # nor stylesheets
    assert (
        "Comprar (https://tienda.example/p/2?utm_source=pleasepoint&utm_medium=email&utm_campaign=prueba)"
        in text
    )


def test_add_utm_keeps_what_the_link_already_says() -> None:
    assert add_utm("https://x.es/a?utm_source=blog#top", UTM) == (
        "https://x.es/a?utm_source=blog&utm_medium=email&utm_campaign=prueba#top"
    )
    assert add_utm("mailto:a@x.es", UTM) == "mailto:a@x.es"
    assert add_utm("https://x.es/a", {}) == "https://x.es/a"


def test_subject_is_text_on_one_line(tmp_path: Path) -> None:
    subject = compile_line("{{ first_name }}, ofertas", "campaign.yaml:3: subject")
    assert (
        subject.render({"first_name": "<b>Ana</b>\r\nBcc: x@evil.test"})
        == "<b>Ana</b> Bcc: x@evil.test, ofertas"
    )
    with pytest.raises(TemplateError, match=r"campaign\.yaml:3: subject: undefined variable"):
        subject.render({})
    with pytest.raises(TemplateError, match=r"campaign\.yaml:3: subject: "):
        compile_line("{{ first_name ", "campaign.yaml:3: subject")


def test_link_problems_and_money() -> None:
    html = '<a href="http://x.es">a</a><a href="/p/1">b</a><img src="https://x.es/i.jpg"><a href="mailto:a@x.es">c</a>'
    problems = link_problems(html)
    assert len(problems) == 2 and "'http://x.es'" in problems[0] and "'/p/1'" in problems[1]
    assert format_money(1234.5) == "1.234,50\u00a0€" and format_money(None) == ""
    assert format_money(3, "USD") == "3,00\u00a0$"


def test_html_to_text_lists_blocks_and_skips_hidden_parts() -> None:
    html = (
        "<html><head><title>T</title><style>p{}</style></head><body><div style='display: none'>oculto"
        "<div>también</div></div><h1>Título</h1><p>Uno  dos\n tres</p><ul><li>a</li><li>b</li></ul>"
        "<a href='https://x.es'><img alt='Logo' src='https://x.es/l.png'></a></body></html>"
    )
    assert html_to_text(html) == "Título\n\nUno dos tres\n\n- a\n\n- b\n\nLogo (https://x.es)\n"
