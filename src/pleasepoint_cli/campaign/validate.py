"""`campaign validate` and `campaign preview`: every problem found before a send, never during one.

Validation loads the YAML and its rules, compiles each template, counts each variant's recipients, and
renders the email for a sample of real recipients of every variant (the MJML source too, so errors carry
`.mjml` line numbers), checking that every link and image is absolute https.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import NotFoundError, PleasepointError

if TYPE_CHECKING:
    from pleasepoint_cli.audience.model import Rule
    from pleasepoint_cli.campaign.model import Campaign
    from pleasepoint_cli.campaign.prepare import PreparedCampaign, RenderedEmail
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.store.connection import Store

MAX_PROBLEMS_PER_VARIANT = 5


@dataclass
class VariantCheck:
    """One variant's figures in a validation."""

    name: str
    template: str
    recipients: int
    rendered: int = 0
    short_of_products: int = 0


@dataclass
class ValidationReport:
    """What `campaign validate` found: per-variant figures, problems (errors) and warnings."""

    path: Path
    campaign: str
    as_of: date
    candidates: int = 0
    variants: list[VariantCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def recipients(self) -> int:
        return sum(v.recipients for v in self.variants)


def _check_address(label: str, value: str | None) -> str | None:
    """A problem with a From/Reply-To value, or None."""
    from email.utils import parseaddr

    from email_validator import EmailNotValidError, validate_email

    if value is None:
        return None
    _, address = parseaddr(value)
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as e:
        return f"{label} {value!r} is not a valid address: {e}"
    return None


def _header_template_problem(label: str, source: str | None) -> str | None:
    """A header template that could put a line break into a header (raw or RFC 2047-encoded), or None."""
    from pleasepoint_cli.delivery.headers import check_header_template

    return None if source is None else check_header_template(label, source)


def _render_checked(prepared: PreparedCampaign, context: dict[str, Any], variant: int) -> RenderedEmail:
    """Render the MJML source (for `.mjml` line numbers) and then the real email; check its links."""
    from pleasepoint_cli.content.templates import link_problems
    from pleasepoint_cli.errors import TemplateError

    prepared_variant = prepared.variants[variant]
    source_context = {**context, "subject": "", "preheader": ""}
    prepared_variant.template.check_source(source_context)
    email = prepared.render(context, variant)
    if bad := link_problems(email.html):
        raise TemplateError(
            f"{prepared_variant.template.path}: for customer {context['customer_id']}: {bad[0]}"
            + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
            + ". Links and images must be absolute https URLs (check the products' url/image_url)."
        )
    return email


def validate_campaign(
    store: Store, path: Path, *, settings: Settings, as_of: date, sample: int = 20
) -> ValidationReport:
    """Check a campaign end to end; YAML and rule errors raise, template and data problems are reported.

    `sample` recipients of every variant are rendered (0: all of them), picked in a fixed pseudo-random order.
    """
    from pleasepoint_cli.campaign.model import load_campaign
    from pleasepoint_cli.campaign.prepare import prepare_campaign
    from pleasepoint_cli.content.recommend import candidate_products

    campaign = load_campaign(path)
    report = ValidationReport(path=path, campaign=campaign.model.name, as_of=as_of)
    for label, value in (
        ("from", campaign.from_address(settings)),
        ("reply_to", campaign.reply_to(settings)),
    ):
        if problem := _check_address(label, value) or _header_template_problem(label, value):
            report.problems.append(f"{path}: {problem}")
    for variant in campaign.variants:
        if problem := _header_template_problem("value", variant.subject):
            report.problems.append(f"{variant.subject_where}: {problem}")
    report.problems += _rule_problems(store, campaign)
    prepared = prepare_campaign(store, campaign, settings, as_of)
    report.candidates = candidate_products(
        store, prepared.builder.candidates, as_of, prepared.builder.rules.seed
    )
    if report.candidates == 0:
        report.warnings.append(
            "no candidate products (none on offer in the window): emails show no products."
        )
    assignments = prepared.assign(store)
    by_variant: dict[int, list[str]] = {v.index: [] for v in campaign.variants}
    for customer, index in assignments:
        by_variant[index].append(customer)
    for variant in campaign.variants:
        members = by_variant[variant.index]
        check = VariantCheck(name=variant.name, template=str(variant.template), recipients=len(members))
        report.variants.append(check)
        chosen = _sample(members, sample)
        problems: list[str] = []
        if not chosen:
            report.warnings.append(
                f"variant {variant.name!r}: no recipients; its template was checked with a made-up customer."
            )
            contexts = [prepared.builder.sample(store)]
        else:
            contexts = list(prepared.contexts(store, chosen).values())
        for context in contexts:
            try:
                _render_checked(prepared, context, variant.index)
            except PleasepointError as e:
                if str(e) not in problems:
                    problems.append(str(e))
                if len(problems) >= MAX_PROBLEMS_PER_VARIANT:
                    break
                continue
            check.rendered += 1
            if len(context["products"]) < prepared.builder.rules.slots:
                check.short_of_products += 1
        report.problems.extend(problems)
        if check.short_of_products and chosen:
            report.warnings.append(
                f"variant {variant.name!r}: {check.short_of_products} of {len(contexts)} sampled customers get "
                f"fewer than {prepared.builder.rules.slots} products (too few candidates); "
                "loop over `products` in the template rather than indexing it."
            )
    return report


def _rule_problems(store: Store, campaign: Campaign) -> list[str]:
    """The audience rules checked against the store: attributes, runs, clusters, stores, categories."""
    from pleasepoint_cli.audience.validate import validate_rule

    rules: list[tuple[Rule | None, tuple[Any, ...]]] = [(campaign.audience, ("audience",))]
    rules += [(v.audience, ("variants", v.index, "audience")) for v in campaign.variants]
    problems = []
    for rule, prefix in rules:
        if rule is None:
            continue
        try:
            validate_rule(store, rule, source=campaign.path, lines=campaign.lines, prefix=prefix)
        except PleasepointError as e:
            problems += str(e).splitlines()
    return problems


def _sample(members: list[str], size: int) -> list[str]:
    """A fixed, spread-out sample (md5 order of the ids), or everyone when size is 0."""
    import hashlib

    if size <= 0 or len(members) <= size:
        return members
    return sorted(members, key=lambda c: hashlib.md5(c.encode("utf-8"), usedforsecurity=False).digest())[
        :size
    ]


@dataclass(frozen=True)
class Preview:
    """A preview: the rendered email and whether the customer is in the campaign's audience."""

    email: RenderedEmail
    in_audience: bool


def preview(store: Store, path: Path, customer_id: str, *, settings: Settings, as_of: date) -> Preview:
    """Render the campaign for one customer: the variant they would get (the first one if none matches)."""
    from pleasepoint_cli.campaign.model import load_campaign
    from pleasepoint_cli.campaign.prepare import prepare_campaign

    campaign = load_campaign(path)
    row = store.first("SELECT count(*) FROM customers WHERE customer_id = ?", [customer_id])
    if not row or not row[0]:
        orders = store.tuples(
            "SELECT count(DISTINCT order_id) FROM order_lines WHERE customer_id = ?", [customer_id]
        )[0][0]
        if orders:
            raise NotFoundError(
                f"customer {customer_id!r} has {orders:,} orders but no customer record (no email, no "
                "consent), so no campaign can select or email them. Load the customers file with "
                "`pleasepoint ingest customers`, or pick a customer from `pleasepoint campaign audience "
                f"{path}`."
            )
        raise NotFoundError(
            f"no customer {customer_id!r} in the database. Pick one from the campaign's audience "
            f"(`pleasepoint campaign audience {path}`) or `pleasepoint customers show ID`."
        )
    prepared = prepare_campaign(store, campaign, settings, as_of)
    variant = prepared.variant_of(store, customer_id)
    contexts = prepared.contexts(store, [customer_id])
    context = contexts[customer_id]
    email = _render_checked(prepared, context, variant if variant is not None else 0)
    return Preview(email=email, in_audience=variant is not None)


def inline_local_images(html: str, base_url: str, folder: Path) -> tuple[str, int]:
    """Replace each `src="<base_url>/img/NAME"` whose file `folder/NAME` exists with a data: URI of it, so a
    preview opened from disk shows the shop's pictures before they are online; return the HTML and how many
    were inlined. Only previews do this: a sent email keeps its https image URLs."""
    import base64
    import re

    prefix = base_url.rstrip("/") + "/img/"
    count = 0

    def local(match: re.Match[str]) -> str:
        nonlocal count
        name = match.group(2)
        path = folder / name
        if "/" in name or ".." in name or not path.is_file():
            return match.group(0)
        data = path.read_bytes()
        kind = (
            "image/png"
            if data.startswith(b"\x89PNG")
            else "image/gif"
            if data.startswith(b"GIF8")
            else "image/svg+xml"
            if path.suffix.lower() == ".svg"
            else "image/jpeg"
        )
        count += 1
        return f'{match.group(1)}data:{kind};base64,{base64.b64encode(data).decode("ascii")}"'

    pattern = re.compile(r'(src=")' + re.escape(prefix) + r'([^"?#]+)"')
    return pattern.sub(local, html), count
