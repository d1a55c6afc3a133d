"""`pleasepoint campaign create|validate|preview|list` through the real CLI, error paths included."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from campaign_data import example_shop_with_personas
from pleasepoint_cli.cli import app
from pleasepoint_cli.store import open_store

EXAMPLES = Path(__file__).parents[2] / "examples"
AS_OF = ["--as-of", "2026-06-30"]


@pytest.fixture(scope="module")
def personas_db(shop_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_shop_with_personas(shop_db, tmp_path_factory.mktemp("cli-personas"))


@pytest.fixture
def shop(personas_db: Path, db_path: Path) -> Path:
    """The example shop with persona run 1, as the test's $PLEASEPOINT_DB."""
    shutil.copy(personas_db, db_path)
    return db_path


def _member_of(db: Path, cluster: int) -> str:
    with open_store(db) as store:
        return str(
            store.scalar(
                "SELECT a.customer_id FROM persona_assignments a JOIN customers c USING (customer_id) "
                "WHERE a.run_id = 1 AND a.cluster = ? AND c.email_consent AND c.email LIKE '%_@%.%' "
                "ORDER BY a.customer_id LIMIT 1",
                [cluster],
            )
        )


class _Document(HTMLParser):
    """Collects tags, links and images; records end tags that close nothing open."""

    VOID = {"meta", "link", "img", "br", "hr", "input", "col", "area", "base", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.urls: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        wanted = {"a": "href", "img": "src"}.get(tag)
        self.urls += [value or "" for name, value in attrs if name == wanted]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> with {self.stack[-3:]} open")
        else:
            self.stack.pop()


def test_create_from_cluster_then_validate_and_preview(runner: CliRunner, shop: Path, tmp_path: Path) -> None:
    created = runner.invoke(app, ["campaign", "create", "--from-cluster", "latest:1", "--dir", "campaigns"])
    assert created.exit_code == 0, created.output
    path = Path(created.stdout.strip())
    assert path.parent == Path("campaigns") and path.exists()
    assert (tmp_path / "templates" / path.with_suffix(".mjml").name).exists()

    validated = runner.invoke(app, ["campaign", "validate", str(path), *AS_OF, "--format", "json"])
    assert validated.exit_code == 0, validated.output
    report = json.loads(validated.stdout)
    assert report["ok"] and report["recipients"] > 0 and report["variants"][0]["rendered"] == 20

    again = runner.invoke(app, ["campaign", "create", "--from-cluster", "latest:1"])
    assert again.exit_code == 1 and "--force" in again.output
    assert runner.invoke(app, ["campaign", "create", "--from-cluster", "latest:1", "--force"]).exit_code == 0

    customer = _member_of(shop, 1)
    shown = runner.invoke(
        app, ["campaign", "preview", str(path), "--customer", customer, "--out", "p.html", *AS_OF]
    )
    assert shown.exit_code == 0, shown.output
    assert "not in the campaign's audience" not in shown.output
    assert (tmp_path / "p.txt").read_text(encoding="utf-8").strip()


def test_the_preview_is_a_complete_html_email(runner: CliRunner, shop: Path, tmp_path: Path) -> None:
    newsletter = EXAMPLES / "campaigns" / "newsletter_septiembre.yaml"
    customer = _member_of(shop, 2)
    result = runner.invoke(
        app,
        ["campaign", "preview", str(newsletter), "--customer", customer, "--out", "out/preview.html", *AS_OF],
    )
    assert result.exit_code == 0, result.output
    html = (tmp_path / "out" / "preview.html").read_text(encoding="utf-8")
    text = (tmp_path / "out" / "preview.txt").read_text(encoding="utf-8")
    document = _Document()
    document.feed(html)
    document.close()
    assert document.errors == [] and document.stack == []
    assert {"html", "head", "body", "a", "img"} <= document.tags
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert document.urls
    for url in document.urls:
        parts = urlsplit(url)
        assert (parts.scheme == "https" and parts.netloc) or parts.scheme == "mailto", url
    assert "utm_campaign=quincena-septiembre" in html and "utm_campaign=quincena-septiembre" in text
    assert "https://tienda.example/baja?c=" in text
    assert "{{" not in html and "{%" not in html and "{{" not in text


def test_validate_fails_on_an_undefined_variable_before_any_send(
    runner: CliRunner, shop: Path, tmp_path: Path
) -> None:
    campaigns = tmp_path / "c"
    shutil.copytree(EXAMPLES, campaigns)
    template = campaigns / "templates" / "cluster_supermercado.mjml"
    lines = template.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines, 1) if "{{ signature }}" in line)
    template.write_text(
        "".join(lines).replace("{{ signature }}", "{{ firma_responsable }}"), encoding="utf-8"
    )
    result = runner.invoke(
        app, ["campaign", "validate", str(campaigns / "campaigns" / "cluster_supermercado.yaml"), *AS_OF]
    )
    assert result.exit_code == 1
    assert (
        f"{template.resolve()}:{number}: undefined variable: 'firma_responsable' is undefined"
        in result.output
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("subject:", "subjet:"), "subjet: unknown key"),
        (("../templates/cluster_supermercado.mjml", "../templates/nada.mjml"), "template: no such template"),
        (("cluster: {run: latest, cluster: 1}", "clustr: {run: latest, cluster: 1}"), "audience"),
    ],
)
def test_bad_campaign_files_exit_1_with_file_and_line(
    runner: CliRunner, shop: Path, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    campaigns = tmp_path / "c"
    shutil.copytree(EXAMPLES, campaigns)
    path = campaigns / "campaigns" / "cluster_supermercado.yaml"
    text = path.read_text(encoding="utf-8").replace(*change)
    path.write_text(text, encoding="utf-8")
    line = next(i for i, content in enumerate(text.splitlines(), 1) if change[1] in content)
    result = runner.invoke(app, ["campaign", "validate", str(path), *AS_OF])
    assert result.exit_code == 1
    assert f"{path}:{line}: {message}" in result.output.replace("\n", "")


def test_mjml_that_fails_to_compile_exits_1(runner: CliRunner, shop: Path, tmp_path: Path) -> None:
    campaigns = tmp_path / "c"
    shutil.copytree(EXAMPLES, campaigns)
    template = campaigns / "templates" / "cluster_supermercado.mjml"
    text = template.read_text(encoding="utf-8").replace(
        "{% if p.offer_price %}", "{% if p.offer_price < p.price %}"
    )
    template.write_text(text, encoding="utf-8")
    result = runner.invoke(
        app, ["campaign", "validate", str(campaigns / "campaigns" / "cluster_supermercado.yaml")]
    )
    assert result.exit_code == 1
    assert "MJML does not compile" in result.output and "`<` inside a Jinja tag" in result.output


def test_preview_of_an_unknown_customer_exits_1(runner: CliRunner, shop: Path) -> None:
    result = runner.invoke(
        app,
        [
            "campaign",
            "preview",
            str(EXAMPLES / "campaigns" / "cluster_supermercado.yaml"),
            "--customer",
            "NADIE",
            *AS_OF,
        ],
    )
    assert result.exit_code == 1 and "no customer 'NADIE'" in result.output


def test_create_needs_exactly_one_source_and_a_valid_cluster(runner: CliRunner, shop: Path) -> None:
    assert runner.invoke(app, ["campaign", "create"]).exit_code == 2
    assert runner.invoke(app, ["campaign", "create", "--from-cluster", "latest"]).exit_code == 2
    missing = runner.invoke(app, ["campaign", "create", "--from-cluster", "latest:42"])
    assert missing.exit_code == 1 and "no cluster 42" in missing.output
    unknown = runner.invoke(app, ["campaign", "create", "--from-filter", "segmento=nadie"])
    assert unknown.exit_code == 1 and "no customer has the attribute" in unknown.output


def test_list_shows_the_campaigns_of_a_folder(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["campaign", "list", "--dir", str(EXAMPLES / "campaigns"), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["file"] for r in rows] == [
        "cluster_supermercado.yaml",
        "newsletter_septiembre.yaml",
        "recuperacion_plantas.yaml",  # the win-back campaign of examples/automations/
    ]
    assert rows[1]["variants"] == "familias con hijos, mayores, parejas jóvenes" and not rows[1]["problem"]
    assert runner.invoke(app, ["campaign", "list", "--dir", "nada"]).exit_code == 1


def test_the_audience_funnel_and_validate_agree_on_each_variant(runner: CliRunner, shop: Path) -> None:
    newsletter = str(EXAMPLES / "campaigns" / "newsletter_septiembre.yaml")
    funnel = runner.invoke(app, ["campaign", "audience", newsletter, *AS_OF, "--format", "json"])
    assert funnel.exit_code == 0, funnel.output
    validated = runner.invoke(app, ["campaign", "validate", newsletter, *AS_OF, "--format", "json"])
    assert validated.exit_code == 0, validated.output
    by_funnel = {f["variant"]: f["customers"] for f in json.loads(funnel.stdout)["funnels"]}
    by_validate = {v["variant"]: v["recipients"] for v in json.loads(validated.stdout)["variants"]}
    assert by_funnel == by_validate and sum(by_validate.values()) > 0


@pytest.mark.parametrize(
    ("where", "expression"),
    [
        ("subject", "{{ cycler.__init__.__globals__.os.popen('touch RAN').read() }}"),
        ("subject", "{{ ''.__class__.__mro__[1].__subclasses__() }}"),
        ("template", "{{ cycler.__init__.__globals__.os.popen('touch RAN').read() }}"),
        ("template", "{{ ''.__class__.__mro__ }}"),
    ],
)
def test_a_template_cannot_run_code(
    runner: CliRunner, shop: Path, tmp_path: Path, where: str, expression: str
) -> None:
    created = runner.invoke(app, ["campaign", "create", "--from-cluster", "latest:1", "--dir", "campaigns"])
    assert created.exit_code == 0, created.output
    path = Path(created.stdout.strip())
    if where == "subject":
        lines = path.read_text(encoding="utf-8").splitlines()
        lines = [f'subject: "{expression}"' if line.startswith("subject:") else line for line in lines]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        template = tmp_path / "templates" / path.with_suffix(".mjml").name
        source = template.read_text(encoding="utf-8")
        template.write_text(source.replace("</mj-text>", f"{expression}</mj-text>", 1), encoding="utf-8")
    customer = _member_of(shop, 1)
    for command in (
        ["campaign", "validate", str(path), *AS_OF],
        ["campaign", "preview", str(path), "--customer", customer, "--out", "p.html", *AS_OF],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, (command, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "unsafe" in result.stderr, result.stderr
        assert not (tmp_path / "RAN").exists()
