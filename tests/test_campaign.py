"""Campaigns: the YAML model and its errors, variants, create from a cluster or a filter, validate, preview."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from campaign_data import AS_OF, example_shop_with_personas, plant_shop
from pleasepoint_cli.campaign.create import (
    STARTER_TEMPLATE,
    create_from_cluster,
    create_from_filter,
    list_campaigns,
)
from pleasepoint_cli.campaign.model import load_campaign
from pleasepoint_cli.campaign.prepare import prepare_campaign
from pleasepoint_cli.campaign.validate import preview, validate_campaign
from pleasepoint_cli.config import Settings
from pleasepoint_cli.errors import ConfigError, NotFoundError, RuleError, TemplateError
from pleasepoint_cli.store import Store, open_store

EXAMPLES = Path(__file__).parents[1] / "examples"
SHOP_AS_OF = date(2026, 6, 30)
SETTINGS = Settings()

TEMPLATE = """\
<mjml>
  <mj-head><mj-title>{{ subject }}</mj-title></mj-head>
  <mj-body>
    <mj-section><mj-column>
      <mj-text>Hola {{ salutation }} {{ first_name }} {{ last_name }}</mj-text>
      <mj-raw>{% for p in products %}</mj-raw>
      <mj-button href="{{ p.url }}">{{ p.name }}</mj-button>
      <mj-raw>{% endfor %}</mj-raw>
      <mj-text><a href="{{ unsubscribe_url }}">Baja</a></mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>
"""


@pytest.fixture(scope="module")
def personas_db(shop_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_shop_with_personas(shop_db, tmp_path_factory.mktemp("personas"))


@pytest.fixture
def shop(personas_db: Path, db_path: Path) -> Iterator[Store]:
    """A private copy of the example shop with a persona run (run 1, five clusters)."""
    shutil.copy(personas_db, db_path)
    with open_store(db_path) as store:
        yield store


@pytest.fixture
def crafted(store: Store) -> Store:
    plant_shop(store.con)
    return store


def _campaign(tmp_path: Path, body: str, template: str = TEMPLATE) -> Path:
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "email.mjml").write_text(template, encoding="utf-8")
    path = tmp_path / "campaign.yaml"
    path.write_text(body, encoding="utf-8")
    return path


BASIC = """\
name: Prueba de campaña
subject: "{{ first_name }}, ofertas"
template: templates/email.mjml
audience:
  consent: true
"""


def test_every_example_campaign_validates_on_the_example_shop(shop: Store) -> None:
    for name in ("cluster_supermercado.yaml", "newsletter_septiembre.yaml"):
        report = validate_campaign(shop, EXAMPLES / "campaigns" / name, settings=SETTINGS, as_of=SHOP_AS_OF)
        assert report.ok, report.problems
        assert report.candidates > 0 and report.recipients > 0
        for variant in report.variants:
            assert variant.recipients > 0 and variant.rendered == min(20, variant.recipients), variant
    newsletter = load_campaign(EXAMPLES / "campaigns" / "newsletter_septiembre.yaml")
    assert [v.name for v in newsletter.variants] == ["familias con hijos", "mayores", "parejas jóvenes"]


def test_the_newsletter_gives_each_customer_the_first_variant_that_matches(shop: Store) -> None:
    campaign = load_campaign(EXAMPLES / "campaigns" / "newsletter_septiembre.yaml")
    prepared = prepare_campaign(shop, campaign, SETTINGS, SHOP_AS_OF)
    assigned = prepared.assign(shop)
    customers = [c for c, _ in assigned]
    assert len(customers) == len(set(customers))  # at most one email each
    from pleasepoint_cli.audience.compile import compile_rule

    chosen = dict(assigned)
    members = []
    for variant in campaign.variants:
        query = compile_rule(campaign.variant_rule(variant), as_of=SHOP_AS_OF, settings=SETTINGS)
        members.append({r[0] for r in shop.con.execute(query.sql, query.params).fetchall()})
    assert set(chosen) == set().union(*members)
    for customer, index in chosen.items():
        assert customer in members[index] and not any(customer in m for m in members[:index])
    assert members[0] & members[2], "the example should have customers in two variants' audiences"


def test_create_from_cluster_selects_that_clusters_mailable_members(shop: Store, tmp_path: Path) -> None:
    con = shop.con
    members = [
        r[0]
        for r in con.execute(
            "SELECT customer_id FROM persona_assignments WHERE run_id = 1 AND cluster = 2 ORDER BY customer_id"
        ).fetchall()
    ]
    rows = con.execute(
        "SELECT customer_id, email, email_consent FROM customers WHERE customer_id IN (SELECT unnest(?))",
        [members],
    ).fetchall()
    valid = {
        c for c, email, consent in rows if consent and re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", email or "")
    }
    suppressed, erased = sorted(valid)[:2]
    con.execute(
        "INSERT INTO suppressions SELECT sha256(lower(email)), email, 'unsubscribed', NULL, now() "
        "FROM customers WHERE customer_id = ?",
        [suppressed],
    )
    con.execute("UPDATE customers SET erased_at = now() WHERE customer_id = ?", [erased])
    label = con.execute("SELECT label FROM persona_clusters WHERE run_id = 1 AND cluster = 2").fetchone()[0]

    path = create_from_cluster(shop, "latest", 2, tmp_path / "campaigns")
    from pleasepoint_cli.textutil import slugify

    assert path == tmp_path / "campaigns" / f"{slugify(label)}.yaml"
    campaign = load_campaign(path)
    assert campaign.model.name == label and campaign.model.run == 1
    assert campaign.variants[0].template == (tmp_path / "templates" / f"{slugify(label)}.mjml").resolve()
    assert campaign.variants[0].template.read_text(encoding="utf-8") == STARTER_TEMPLATE
    prepared = prepare_campaign(shop, campaign, SETTINGS, SHOP_AS_OF)
    assert {c for c, _ in prepared.assign(shop)} == valid - {suppressed, erased}
    report = validate_campaign(shop, path, settings=SETTINGS, as_of=SHOP_AS_OF)
    assert report.ok, report.problems

    with pytest.raises(ConfigError, match=r"already exists.*--force"):
        create_from_cluster(shop, "latest", 2, tmp_path / "campaigns")
    assert create_from_cluster(shop, "analisis-categorias", 2, tmp_path / "campaigns", force=True) == path
    with pytest.raises(NotFoundError, match="no cluster 9"):
        create_from_cluster(shop, 1, 9, tmp_path / "campaigns")


def test_clusters_sharing_a_label_get_their_number_in_the_file_name(shop: Store, tmp_path: Path) -> None:
    shop.con.execute(
        "UPDATE persona_clusters SET label = 'Sólo supermercado' WHERE run_id = 1 AND cluster IN (1, 2)"
    )
    assert create_from_cluster(shop, 1, 2, tmp_path).name == "solo_supermercado_2.yaml"


def test_create_from_filter_by_attribute_or_rule_file(crafted: Store, tmp_path: Path) -> None:
    crafted.con.execute(
        "INSERT INTO customer_attributes VALUES ('C1', 'segmento', 'Sólo huerto', 'manual', now(), NULL)"
    )
    path = create_from_filter(crafted, "segmento=Sólo huerto", tmp_path / "campaigns")
    assert path.name == "segmento_solo_huerto.yaml"
    text = path.read_text(encoding="utf-8")
    assert "Sólo huerto" in text
    campaign = load_campaign(path)
    assert [c for c, _ in prepare_campaign(crafted, campaign, SETTINGS, AS_OF).assign(crafted)] == ["C1"]
    with pytest.raises(ConfigError, match="no customer has the attribute 'segmento' = 'Plantas'"):
        create_from_filter(crafted, "segmento=Plantas", tmp_path / "campaigns")

    rule = tmp_path / "familias.yaml"
    rule.write_text("audience:\n  bought: {category: [Huerto ECO]}\n", encoding="utf-8")
    from_file = create_from_filter(crafted, str(rule), tmp_path / "campaigns")
    assert from_file.name == "familias.yaml"
    assigned = prepare_campaign(crafted, load_campaign(from_file), SETTINGS, AS_OF).assign(crafted)
    assert [c for c, _ in assigned] == ["C1", "C2", "C4"]
    rule.write_text("audience:\n  bougth: {category: [Huerto ECO]}\n", encoding="utf-8")
    with pytest.raises(RuleError, match=rf"{re.escape(str(rule))}:2: "):
        create_from_filter(crafted, str(rule), tmp_path / "otras")


def test_bad_campaign_files_name_file_and_line(tmp_path: Path) -> None:
    path = _campaign(tmp_path, BASIC.replace("subject:", "subjet:"))
    with pytest.raises(ConfigError) as error:
        load_campaign(path)
    assert f"{path}:2: subjet: unknown key" in str(error.value)
    assert f"{path}:1: subject: Field required" in str(error.value)
    path = _campaign(tmp_path, BASIC.replace("templates/email.mjml", "templates/no-existe.mjml"))
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}:3: template: no such template file"):
        load_campaign(path)
    path = _campaign(tmp_path, BASIC.replace("consent: true", "consent: true\n  atribute: x"))
    with pytest.raises(RuleError, match=rf"{re.escape(str(path))}:"):
        load_campaign(path)
    path = _campaign(tmp_path, BASIC.replace("audience:\n  consent: true\n", ""))
    with pytest.raises(ConfigError, match="no audience"):
        load_campaign(path)
    path = _campaign(tmp_path, BASIC + "variants:\n  - {name: a, template: templates/email.mjml}\n")
    with pytest.raises(ConfigError, match="either `template:`"):
        load_campaign(path)
    path = _campaign(tmp_path, BASIC.replace('"{{ first_name }}, ofertas"', '"a\\r\\nBcc: x@evil.test"'))
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}:2: subject: .*one line"):
        load_campaign(path)


def test_validate_reports_an_undefined_variable_with_the_template_line(
    crafted: Store, tmp_path: Path
) -> None:
    path = _campaign(tmp_path, BASIC, TEMPLATE.replace("{{ last_name }}", "{{ apellidos }}"))
    report = validate_campaign(crafted, path, settings=SETTINGS, as_of=AS_OF)
    assert not report.ok
    template = (tmp_path / "templates" / "email.mjml").resolve()
    assert report.problems == [
        f"{template}:5: undefined variable: 'apellidos' is undefined. Check its spelling against the context "
        "variables in docs/campaigns.md, or guard it with `is defined`."
    ]
    good = validate_campaign(crafted, _campaign(tmp_path, BASIC), settings=SETTINGS, as_of=AS_OF)
    assert good.ok and good.recipients == 4 and good.variants[0].rendered == 4  # C5 has no consent


def test_validate_reports_mjml_errors_and_links_that_are_not_https(crafted: Store, tmp_path: Path) -> None:
    path = _campaign(tmp_path, BASIC, TEMPLATE.replace("</mj-column></mj-section>", "</mj-section>"))
    with pytest.raises(TemplateError, match="MJML does not compile"):
        validate_campaign(crafted, path, settings=SETTINGS, as_of=AS_OF)
    crafted.con.execute("UPDATE products SET url = 'http://tienda.example/p/A1' WHERE product_id = 'A1'")
    report = validate_campaign(crafted, _campaign(tmp_path, BASIC), settings=SETTINGS, as_of=AS_OF)
    assert not report.ok and "'http://tienda.example/p/A1' is not an absolute https URL" in report.problems[0]


def test_an_empty_audience_is_checked_with_a_made_up_customer(crafted: Store, tmp_path: Path) -> None:
    crafted.con.execute(
        "INSERT INTO customer_attributes VALUES ('C1', 'segmento', 'Huerto', 'manual', now(), NULL)"
    )
    body = BASIC.replace("consent: true", "attribute: segmento\n  equals: nadie")
    report = validate_campaign(crafted, _campaign(tmp_path, body), settings=SETTINGS, as_of=AS_OF)
    assert report.ok and report.recipients == 0 and "no recipients" in report.warnings[0]
    bad = validate_campaign(
        crafted,
        _campaign(tmp_path, body, TEMPLATE.replace("{{ last_name }}", "{{ x }}")),
        settings=SETTINGS,
        as_of=AS_OF,
    )
    assert not bad.ok


def test_preview_escapes_the_html_and_keeps_the_subject_plain(crafted: Store, tmp_path: Path) -> None:
    path = _campaign(tmp_path, BASIC)
    result = preview(crafted, path, "C5", settings=SETTINGS, as_of=AS_OF)
    assert not result.in_audience  # C5 gave no consent: previewed, but would not receive it
    email = result.email
    assert email.subject == "<script>alert(1)</script>, ofertas"
    assert "<script>" not in email.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "O&#39;Brien &amp; &lt;b&gt;Hijos&lt;/b&gt;" in email.html
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt;, ofertas</title>" in email.html
    assert "Hola Sra. <script>alert(1)</script> O'Brien & <b>Hijos</b>" in email.text
    ok = preview(crafted, path, "C1", settings=SETTINGS, as_of=AS_OF)
    assert ok.in_audience and ok.email.to == "c1@example.com" and ok.email.variant == "Prueba de campaña"
    # Accents survive the YAML, the context, MRML, Jinja and the text part.
    assert ok.email.subject == "María José, ofertas" and ok.email.to_name == "María José Núñez Peña"
    assert (
        "Hola Sra. María José Núñez Peña" in ok.email.html
        and "Hola Sra. María José Núñez Peña" in ok.email.text
    )
    assert "Pañales ecológicos" in ok.email.html and "Pañales ecológicos" in ok.email.text
    with pytest.raises(NotFoundError, match="no customer 'C99'"):
        preview(crafted, path, "C99", settings=SETTINGS, as_of=AS_OF)


def test_list_campaigns_shows_each_file_or_its_problem(tmp_path: Path) -> None:
    _campaign(tmp_path, BASIC)
    (tmp_path / "rota.yaml").write_text("name: x\n", encoding="utf-8")
    rows = list_campaigns(tmp_path)
    assert [(r.file, r.name, bool(r.problem)) for r in rows] == [
        ("campaign.yaml", "Prueba de campaña", False),
        ("rota.yaml", "", True),
    ]
    with pytest.raises(ConfigError, match="no such folder"):
        list_campaigns(tmp_path / "nada")


def test_validate_checks_the_rules_against_the_store(crafted: Store, tmp_path: Path) -> None:
    body = BASIC.replace(
        "consent: true", "all:\n    - consent: true\n    - attribute: segmentoo\n      equals: x"
    )
    path = _campaign(tmp_path, body)
    report = validate_campaign(crafted, path, settings=SETTINGS, as_of=AS_OF)
    assert not report.ok
    assert report.problems[0].startswith(f"{path}:7: audience.all.1.attribute: unknown attribute 'segmentoo'")


def test_validate_refuses_header_templates_that_could_forge_headers(crafted: Store, tmp_path: Path) -> None:
    forged = BASIC.replace('"{{ first_name }}, ofertas"', '"=?utf-8?q?{{ first_name }}=0D=0ABcc:_x?="')
    report = validate_campaign(crafted, _campaign(tmp_path, forged), settings=SETTINGS, as_of=AS_OF)
    path = tmp_path / "campaign.yaml"
    assert not report.ok
    assert report.problems[0].startswith(f"{path}:2: subject: value ")
    assert "encoded-word syntax" in report.problems[0]
    sender = BASIC + 'from: "=?utf-8?q?Tienda=0D=0ABcc:_x@evil.test?= <hola@tienda.example>"\n'
    report = validate_campaign(crafted, _campaign(tmp_path, sender), settings=SETTINGS, as_of=AS_OF)
    assert not report.ok and report.problems[0].startswith(f"{path}: from ")
