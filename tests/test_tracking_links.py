"""The renderer's tracking: links through signed redirects, the pixel, the unsubscribe link left direct."""

from __future__ import annotations

import html
import re

from pleasepoint_cli.tracking.links import LinkRef, rewrite_html, verify_click, verify_open

SECRET = b"k" * 40


def test_links_are_rewritten_signed_and_the_unsubscribe_and_mailto_stay_direct() -> None:
    document = (
        '<html><body><a href="https://tienda.example/ofertas?a=1&amp;b=2">Ofertas</a>'
        "<a class=\"x\" href='https://tienda.example/baja?c=C1&amp;t=z'>Baja</a>"
        '<a href="mailto:hola@tienda.example">Escríbenos</a><a href="#top">arriba</a></body></html>'
    )
    out = rewrite_html(
        document,
        base_url="https://t.example/t",
        secret=SECRET,
        ref=LinkRef(send_id="S1"),
        keep=("https://tienda.example/baja",),
    )
    hrefs = [html.unescape(h) for h in re.findall(r'href=["\']([^"\']*)', out)]
    assert hrefs[1:] == ["https://tienda.example/baja?c=C1&t=z", "mailto:hola@tienda.example", "#top"]
    from urllib.parse import parse_qs, urlsplit

    tracked = urlsplit(hrefs[0])
    query = {k: v[0] for k, v in parse_qs(tracked.query).items()}
    assert tracked.netloc == "t.example" and tracked.path == "/t/c"
    assert query["u"] == "https://tienda.example/ofertas?a=1&b=2"
    assert verify_click(SECRET, LinkRef(send_id="S1"), query["u"], query["t"])
    assert not verify_click(SECRET, LinkRef(send_id="S2"), query["u"], query["t"])
    pixel = re.search(r'<img src="([^"]+)"', out)
    assert pixel is not None and out.index("<img") < out.index("</body>")
    pixel_query = {k: v[0] for k, v in parse_qs(urlsplit(html.unescape(pixel.group(1))).query).items()}
    assert verify_open(SECRET, LinkRef(send_id="S1"), pixel_query["t"])
    assert "Escríbenos" in out
