"""Making campaign files: from a persona cluster (the guide's "Create campaign" button) or from a filter,
each with a starter MJML template; and listing the campaigns of a folder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import ConfigError, NotFoundError, PleasepointError

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store

    pass

STARTER_TEMPLATE = """\
<mjml lang="es">
  <mj-head>
    <mj-title>{{ subject }}</mj-title>
    <mj-preview>{{ preheader }}</mj-preview>
    <mj-attributes>
      <mj-all font-family="Helvetica, Arial, sans-serif" />
      <mj-text font-size="15px" line-height="1.5" color="#2d3a2e" />
    </mj-attributes>
  </mj-head>
  <mj-body background-color="#f4f7f2">
    <mj-section background-color="#ffffff" padding="24px">
      <mj-column>
        <mj-text font-size="20px" font-weight="bold">{{ shop.name }}</mj-text>
        <mj-text>{{ greeting }}</mj-text>
        <mj-text>Hemos seleccionado estas ofertas pensando en ti.</mj-text>
      </mj-column>
    </mj-section>
    <mj-raw>{% for p in products %}</mj-raw>
    <mj-section background-color="#ffffff" padding="8px 24px">
      <mj-column width="40%">
        <mj-image src="{{ p.image_url }}" href="{{ p.url }}" alt="{{ p.name }}" width="160px" />
      </mj-column>
      <mj-column width="60%">
        <mj-text font-weight="bold">{{ p.name }}</mj-text>
        <mj-text>{% if p.offer_price %}<b>{{ p.offer_price | money }}</b>, antes <s>{{ p.price | money }}</s> (-{{ p.discount_pct }}%){% else %}{{ p.price | money }}{% endif %}</mj-text>
        <mj-button href="{{ p.url }}" background-color="#3b7d3c">Ver producto</mj-button>
      </mj-column>
    </mj-section>
    <mj-raw>{% endfor %}</mj-raw>
    <mj-section background-color="#ffffff" padding="24px">
      <mj-column>
        <mj-raw>{% if store.name %}</mj-raw>
        <mj-text>Te esperamos en {{ store.name }}, {{ store.address }} ({{ store.city }}).</mj-text>
        <mj-raw>{% endif %}</mj-raw>
        <mj-text>{{ signature }}</mj-text>
        <mj-text font-size="12px" color="#6b7a6c">{% if email_consent %}Recibes este correo porque aceptaste nuestras comunicaciones.{% else %}Recibes este correo como cliente de {{ shop.name }}.{% endif %} <a href="{{ unsubscribe_url }}">Darse de baja</a>.</mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""
"""The starter template written beside a created campaign: greeting, the product slots, store, signature.
The greeting falls back to "Hola:" without a first name; the footer claims consent only when it was given."""

STARTER_TEMPLATES = {
    "es": STARTER_TEMPLATE,
    "en": STARTER_TEMPLATE.replace('<mjml lang="es">', '<mjml lang="en">')
    .replace("Hemos seleccionado estas ofertas pensando en ti.", "We picked these offers with you in mind.")
    .replace(", antes <s>", ", was <s>")
    .replace("Ver producto", "See the product")
    .replace("Te esperamos en {{ store.name }}", "See you at {{ store.name }}")
    .replace(
        "Recibes este correo porque aceptaste nuestras comunicaciones.",
        "You get this email because you agreed to hear from us.",
    )
    .replace(
        "Recibes este correo como cliente de {{ shop.name }}.",
        "You get this email as a customer of {{ shop.name }}.",
    )
    .replace("Darse de baja", "Unsubscribe"),
}
"""The starter template by `shop.language`."""

SUBJECTS = {
    "es": (
        '"Ofertas seleccionadas para ti{% if first_name %}, {{ first_name }}{% endif %}"',
        '"Las ofertas de esta quincena en {{ shop.name }}"',
    ),
    "en": (
        '"Offers picked for you{% if first_name %}, {{ first_name }}{% endif %}"',
        '"This fortnight\'s offers at {{ shop.name }}"',
    ),
}
"""Subject and preheader of a created campaign: a subject never starts with an empty name."""


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML), accents kept."""
    return json.dumps(text, ensure_ascii=False)


def _dump(data: Any, indent: int) -> str:
    """YAML text of `data` indented under a key."""
    import yaml

    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=False)
    pad = " " * indent
    return "".join(pad + line + "\n" for line in text.splitlines())


def _campaign_yaml(
    name: str, template: str, audience: Any, *, comment: str, run: int | None, language: str = "es"
) -> str:
    subject, preheader = SUBJECTS.get(language, SUBJECTS["es"])
    lines = [
        f"# {comment}",
        "# Check it with `pleasepoint campaign validate` and look at it with `pleasepoint campaign preview`.",
        f"name: {_quoted(name)}",
        f"subject: {subject}",
        f"preheader: {preheader}",
        f"template: {_quoted(template)}",
        "audience:",
        _dump(audience, 2).rstrip("\n"),
    ]
    if run is not None:
        lines.append(f"run: {run}                 # the persona run for cluster labels and recommendations")
    lines += [
        "products:",
        "  candidates:",
        "    on_offer: true        # on offer on the send date; or {from: 2026-09-01, to: 2026-09-15}",
        "  slots: 3",
        "  exclude_bought_within_days: 30",
        "utm:",
        "  source: pleasepoint",
        "  medium: email",
    ]
    return "\n".join(lines) + "\n"


def _write(directory: Path, slug: str, yaml_text: str, force: bool, language: str = "es") -> Path:
    """Write campaigns/<slug>.yaml and templates/<slug>.mjml (beside the campaigns folder)."""
    templates = directory.parent / "templates"
    yaml_path = directory / f"{slug}.yaml"
    template_path = templates / f"{slug}.mjml"
    if not force:
        for existing in (yaml_path, template_path):
            if existing.exists():
                raise ConfigError(f"{existing} already exists. Pass --force to overwrite it.")
    directory.mkdir(parents=True, exist_ok=True)
    templates.mkdir(parents=True, exist_ok=True)
    yaml_path.write_text(yaml_text, encoding="utf-8")
    template_path.write_text(STARTER_TEMPLATES.get(language, STARTER_TEMPLATE), encoding="utf-8")
    return yaml_path


def _template_ref(directory: Path, slug: str) -> str:
    return Path(os.path.relpath(directory.parent / "templates" / f"{slug}.mjml", directory)).as_posix()


def create_from_cluster(
    store: Store,
    run_ref: int | str,
    cluster: int,
    directory: Path,
    *,
    force: bool = False,
    language: str = "es",
) -> Path:
    """Write `<directory>/<label slug>.yaml` whose audience is the cluster, and a starter template.

    The file is named after the cluster's label (with the cluster number when two clusters of the run share
    a label); the audience names the run by id, so a later run does not change who receives it.
    """
    from pleasepoint_cli.persona.runs import resolve_run
    from pleasepoint_cli.textutil import slugify

    run_id = resolve_run(store, run_ref)
    labels = dict(
        store.tuples(
            "SELECT cluster, label FROM persona_clusters WHERE run_id = ? ORDER BY cluster", [run_id]
        )
    )
    if cluster not in labels:
        known = f"{min(labels)}..{max(labels)}" if labels else "none"
        raise NotFoundError(f"run {run_id} has no cluster {cluster} (its clusters: {known}).")
    label = str(labels[cluster])
    slug = slugify(label)
    if [slugify(str(other)) for other in labels.values()].count(slug) > 1:
        slug = f"{slug}_{cluster}"
    audience = {"cluster": {"run": run_id, "cluster": cluster}}
    text = _campaign_yaml(
        label,
        _template_ref(directory, slug),
        audience,
        comment=f"Campaign for cluster {cluster} ({label}) of persona run {run_id}.",
        run=run_id,
        language=language,
    )
    return _write(directory, slug, text, force, language)


def create_from_filter(
    store: Store,
    source: str,
    directory: Path,
    *,
    force: bool = False,
    language: str = "es",
) -> Path:
    """Write a campaign whose audience is a rule file's `audience:` or an `attribute=value` filter."""
    from pleasepoint_cli.audience.parse import parse_rule
    from pleasepoint_cli.textutil import slugify
    from pleasepoint_cli.yamlio import read_yaml

    path = Path(source)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        data, lines = read_yaml(path)
        if not isinstance(data, dict) or "audience" not in data:
            raise ConfigError(f"{path}:1: no top-level `audience:` key. Add one holding the rule.")
        parse_rule(data["audience"], source=path, lines=lines, prefix=("audience",))
        audience = data["audience"]
        name = str(data.get("name") or path.stem.replace("_", " "))
        comment = f"Campaign for the audience of {path}."
    else:
        key, sep, value = source.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ConfigError(
                f"--from-filter {source!r}: give a rule YAML file or attribute=value "
                "(e.g. segmento='Sólo huerto')."
            )
        found = store.first(
            "SELECT count(*) FROM customer_attributes WHERE key = ? AND value = ?", [key, value]
        )
        if not found or not found[0]:
            raise ConfigError(
                f"--from-filter {source!r}: no customer has the attribute {key!r} = {value!r}. "
                "Check the key and value with `pleasepoint customers show ID`."
            )
        audience = {"attribute": key, "equals": value}
        name = f"{key} {value}"
        comment = f"Campaign for the customers whose attribute {key} is {value!r}."
    slug = slugify(name)
    return _write(
        directory,
        slug,
        _campaign_yaml(
            name, _template_ref(directory, slug), audience, comment=comment, run=None, language=language
        ),
        force,
        language,
    )


@dataclass(frozen=True)
class CampaignSummary:
    """One campaign file of a folder: its name, variants and templates, or why it does not load."""

    file: str
    name: str
    variants: str
    templates: str
    subject: str
    problem: str


def list_campaigns(directory: Path) -> list[CampaignSummary]:
    """The campaign files of a folder (by file name), each loaded to show its variants or its problem."""
    from pleasepoint_cli.campaign.model import load_campaign

    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such folder. Pass --dir, or create one with `pleasepoint init`.")
    out = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            campaign = load_campaign(path)
        except PleasepointError as e:
            out.append(CampaignSummary(path.name, "", "", "", "", str(e).splitlines()[0]))
            continue
        out.append(
            CampaignSummary(
                file=path.name,
                name=campaign.model.name,
                variants=", ".join(v.name for v in campaign.variants),
                templates=", ".join(sorted({v.template.name for v in campaign.variants})),
                subject=campaign.model.subject,
                problem="",
            )
        )
    return out
