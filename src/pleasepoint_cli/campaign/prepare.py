"""A campaign made ready to render: templates compiled once, the run and signing key resolved, the variant of
every recipient decided in SQL; then contexts per batch and one `RenderedEmail` per recipient.

This is the shape a sender uses: `prepare` once, `assign` the audience, then for each batch of recipients
`contexts` (a few set-based queries) and `render` (pure Python, no database).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import NotFoundError

if TYPE_CHECKING:
    from pleasepoint_cli.campaign.model import Campaign
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.content.context import ContextBuilder, ContextRows
    from pleasepoint_cli.content.templates import CompiledTemplate, LineTemplate
    from pleasepoint_cli.store.connection import Store


@dataclass(frozen=True)
class RenderedEmail:
    """One recipient's email, ready to be put into a MIME message: headers' values and both parts."""

    campaign: str
    variant: str
    customer_id: str
    to: str
    to_name: str
    from_address: str
    reply_to: str | None
    subject: str
    preheader: str
    html: str
    text: str
    unsubscribe_url: str


@dataclass(frozen=True)
class PreparedVariant:
    """A variant with its template and subject compiled."""

    name: str
    template: CompiledTemplate
    subject: LineTemplate
    preheader: LineTemplate


def resolve_run_ref(store: Store, ref: int | str) -> int | None:
    """The persona run a campaign means; `latest` with no runs at all means none (no cluster labels)."""
    from pleasepoint_cli.persona.runs import resolve_run

    if str(ref).strip().lower() == "latest":
        row = store.first("SELECT count(*) FROM persona_runs")
        if not row or not row[0]:
            return None
    return resolve_run(store, ref)


@dataclass(frozen=True)
class Renderer:
    """The compiled variants of a campaign and the few settings rendering reads: one recipient's email from
    their context, with no database. Picklable (the templates pickle as their sources), so a send renders
    in worker processes what the parent compiled."""

    slug: str
    from_address: str
    reply_to: str | None
    settings: Settings
    secret: bytes
    variants: tuple[PreparedVariant, ...]

    def render(self, context: dict[str, Any], variant: int, send_id: str | None = None) -> RenderedEmail:
        """One recipient's email from their context.

        With `tracking.base_url` set, links go through signed click redirects and an open pixel is added,
        naming the message by `send_id` when given, else by campaign and customer.
        """
        prepared = self.variants[variant]
        context = {**context, "campaign": {**context["campaign"], "variant": prepared.name}}
        context["subject"] = subject = prepared.subject.render(context)
        context["preheader"] = preheader = prepared.preheader.render(context)
        html, text = prepared.template.render(context)
        if self.settings.tracking.base_url:
            from pleasepoint_cli.tracking.links import track_rendered

            html = track_rendered(
                html, self.settings, self.secret, self.slug, context["customer_id"], send_id
            )
        return RenderedEmail(
            campaign=self.slug,
            variant=prepared.name,
            customer_id=context["customer_id"],
            to=context["email"] or "",
            to_name=context["full_name"],
            from_address=self.from_address,
            reply_to=self.reply_to,
            subject=subject,
            preheader=preheader,
            html=html,
            text=text,
            unsubscribe_url=context["unsubscribe_url"],
        )


@dataclass
class PreparedCampaign:
    """A campaign compiled for one as-of date: render any recipient of any variant without recompiling."""

    campaign: Campaign
    settings: Settings
    as_of: date
    run_id: int | None
    variants: tuple[PreparedVariant, ...]
    builder: ContextBuilder
    needs_ops: bool = False
    _renderer: Renderer | None = field(default=None, init=False, repr=False)

    def audience_query(self) -> tuple[str, list[Any]]:
        """SQL of (customer_id, variant) for every recipient: the first variant whose audience matches."""
        from pleasepoint_cli.audience.compile import compile_variants

        variants = self.campaign.variants  # `index` is the position: compile_variants numbers them alike
        assert [v.index for v in variants] == list(range(len(variants)))
        compiled = compile_variants(
            [self.campaign.variant_rule(v) for v in variants],
            as_of=self.as_of,
            marketing=True,
            settings=self.settings,
        )
        self.needs_ops = compiled.needs_ops
        return f"SELECT customer_id, variant FROM ({compiled.sql})", compiled.params

    def assign(self, store: Store) -> list[tuple[str, int]]:
        """Every recipient and the index of its variant, by customer id."""
        sql, params = self.audience_query()
        self._ops_views(store)
        rows = store.tuples(f"{sql} ORDER BY customer_id", params)
        return [(str(customer), int(variant)) for customer, variant in rows]

    def variant_of(self, store: Store, customer_id: str) -> int | None:
        """The variant one customer would receive, or None when no variant's audience holds them."""
        sql, params = self.audience_query()
        self._ops_views(store)
        row = store.first(f"SELECT variant FROM ({sql}) WHERE customer_id = ?", [*params, customer_id])
        return None if row is None else int(row[0])

    def _ops_views(self, store: Store) -> None:
        """Engagement rules read the operational store's sends and events: register them first."""
        if self.needs_ops:
            from pleasepoint_cli.events.views import ensure_ops_views

            ensure_ops_views(store, self.settings)

    def contexts(self, store: Store, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The template contexts of a batch of customers (a few set-based queries for the whole batch)."""
        return self.builder.build(store, customer_ids)

    def context_rows(self, store: Store, customer_ids: Sequence[str]) -> ContextRows:
        """The database's part of a batch's contexts; `builder.context_of` assembles each (no database)."""
        return self.builder.fetch(store, customer_ids)

    @property
    def renderer(self) -> Renderer:
        """What rendering needs and nothing more (no database, no context builder): picklable, so a send can
        render in worker processes."""
        if self._renderer is None:
            self._renderer = Renderer(
                slug=self.campaign.slug,
                from_address=self.campaign.from_address(self.settings),
                reply_to=self.campaign.reply_to(self.settings),
                settings=self.settings,
                secret=self.builder.secret,
                variants=self.variants,
            )
        return self._renderer

    def render(self, context: dict[str, Any], variant: int, send_id: str | None = None) -> RenderedEmail:
        """One recipient's email from their context (no database access); see `Renderer.render`."""
        return self.renderer.render(context, variant, send_id)

    def render_batch(self, store: Store, recipients: Sequence[tuple[str, int]]) -> Iterator[RenderedEmail]:
        """Render a batch of (customer_id, variant) pairs, building their contexts in one go."""
        contexts = self.contexts(store, [customer for customer, _ in recipients])
        for customer, variant in recipients:
            if customer not in contexts:
                raise NotFoundError(f"no customer {customer!r} in the database.")
            yield self.render(contexts[customer], variant)


def prepare_campaign(store: Store, campaign: Campaign, settings: Settings, as_of: date) -> PreparedCampaign:
    """Compile every variant's template and subject once, resolve the persona run and the signing key."""
    from pleasepoint_cli.content.context import ContextBuilder
    from pleasepoint_cli.content.recommend import CandidateSpec, RecommendationRules
    from pleasepoint_cli.content.templates import compile_line, compile_template
    from pleasepoint_cli.content.unsubscribe import check_base_url, signing_secret

    check_base_url(settings.email.unsubscribe_base_url)
    if settings.tracking.base_url:
        from pleasepoint_cli.tracking.links import check_tracking_url

        check_tracking_url(settings.tracking.base_url)
    utm = campaign.utm_params()
    variants = tuple(
        PreparedVariant(
            name=variant.name,
            template=compile_template(variant.template, utm=utm),
            subject=compile_line(variant.subject, variant.subject_where),
            preheader=compile_line(variant.preheader, variant.preheader_where),
        )
        for variant in campaign.variants
    )
    run_id = resolve_run_ref(store, campaign.model.run)
    products = campaign.model.products
    offer = products.candidates.on_offer
    if offer is None:
        offer = not products.candidates.product_ids
    window_from = window_to = None
    if not isinstance(offer, bool):
        window_from, window_to = offer.from_, offer.to
        offer = True
    builder = ContextBuilder(
        settings=settings,
        as_of=as_of,
        campaign=campaign.slug,
        campaign_name=campaign.model.name,
        signature=campaign.signature(settings),
        secret=signing_secret(store),
        run_id=run_id,
        candidates=CandidateSpec(
            on_offer=offer,
            window_from=window_from,
            window_to=window_to,
            product_ids=tuple(products.candidates.product_ids),
        ),
        rules=RecommendationRules(
            slots=products.slots,
            exclude_bought_within_days=products.exclude_bought_within_days,
            regular_by=products.regular.by,
            regular_min_orders=products.regular.min_orders,
            regular_min_share=products.regular.min_share,
            habitual_level=products.habitual.level,
            habitual_min_propensity=products.habitual.min_propensity,
            fill=products.fill,
            seed=products.seed if products.seed is not None else campaign.slug,
        ),
        salutations=campaign.salutation_table(),
    )
    return PreparedCampaign(
        campaign=campaign, settings=settings, as_of=as_of, run_id=run_id, variants=variants, builder=builder
    )
