"""`pleasepoint campaign create|validate|preview|send|status|list`: one-off email campaigns from YAML and MJML."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pleasepoint_cli.cli import audience_cmd
from pleasepoint_cli.cli._common import (
    FormatOption,
    OutputFormat,
    emit_json,
    emit_rows,
    say,
    state,
    stderr_console,
    use_clock,
)

if TYPE_CHECKING:
    from pleasepoint_cli.campaign.validate import ValidationReport
    from pleasepoint_cli.delivery.send import SendSummary
    from pleasepoint_cli.store import Store

app = typer.Typer(
    help="One-off email campaigns: create them from a cluster or a filter, see their audience funnel, "
    "validate, preview, send, see the send status, list.",
    no_args_is_help=True,
)

AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="The day (YYYY-MM-DD) for audiences, offers and recency. Default: the day of the latest purchase.",
    ),
]


def _as_of(ctx: typer.Context, store: Store, value: str | None) -> date:
    """The as-of of an analysis command (clock.resolve_clock): --as-of, else the latest purchase's day."""
    from pleasepoint_cli.clock import ANALYSIS, latest_purchase_day

    return use_clock(ctx, ANALYSIS, latest_purchase_day(store), as_of=value).as_of


@app.command("create")
def campaign_create_command(
    ctx: typer.Context,
    from_cluster: Annotated[
        str | None,
        typer.Option(
            "--from-cluster", metavar="RUN:CLUSTER", help="A persona cluster, e.g. latest:3 or 12:1."
        ),
    ] = None,
    from_filter: Annotated[
        str | None,
        typer.Option(
            "--from-filter",
            metavar="FILE|KEY=VALUE",
            help="A rule YAML file (its `audience:`) or an attribute filter such as segmento='Sólo huerto'.",
        ),
    ] = None,
    directory: Annotated[Path, typer.Option("--dir", help="Folder of campaign files.")] = Path("campaigns"),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the campaign and template if they exist.")
    ] = False,
) -> None:
    """Write campaigns/<name>.yaml with its audience set, and a starter template in templates/.

    Example: pleasepoint campaign create --from-cluster latest:1
    """
    from pleasepoint_cli.campaign.create import create_from_cluster, create_from_filter
    from pleasepoint_cli.campaign.model import load_campaign

    if (from_cluster is None) == (from_filter is None):
        raise typer.BadParameter("give one of --from-cluster RUN:CLUSTER or --from-filter FILE|KEY=VALUE.")
    app_state = state(ctx)
    with app_state.reader() as store:
        if from_cluster is not None:
            run, sep, cluster = from_cluster.rpartition(":")
            if not sep or not run or not cluster.strip().isdigit():
                raise typer.BadParameter(
                    f"{from_cluster!r}: expected RUN:CLUSTER, e.g. latest:3.", param_hint="--from-cluster"
                )
            path = create_from_cluster(
                store, run, int(cluster), directory, force=force, language=app_state.settings.shop.language
            )
        else:
            assert from_filter is not None
            path = create_from_filter(
                store, from_filter, directory, force=force, language=app_state.settings.shop.language
            )
    campaign = load_campaign(path)
    typer.echo(str(path))
    say(
        ctx,
        f"wrote {path} ({campaign.model.name}) and its template {campaign.variants[0].template.name}; "
        f"check it with `pleasepoint campaign validate {path}`.",
    )


def _report_rows(report: ValidationReport) -> list[dict[str, object]]:
    return [
        {
            "variant": v.name,
            "template": Path(v.template).name,
            "recipients": v.recipients,
            "rendered": v.rendered,
            "short_of_products": v.short_of_products,
        }
        for v in report.variants
    ]


@app.command("validate")
def campaign_validate_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The campaign YAML file.")],
    sample: Annotated[
        int,
        typer.Option("--sample", min=0, help="Recipients of each variant to render (0: every one of them)."),
    ] = 20,
    as_of: AsOfOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Check the YAML, the audience rules and the templates, rendering for a sample of real recipients.

    Exit 1 on any problem, each with its file and line. Example: pleasepoint campaign validate campaigns/x.yaml
    """
    from pleasepoint_cli.campaign.validate import validate_campaign
    from pleasepoint_cli.cli._common import stderr_console
    from pleasepoint_cli.ops.suppression import attach_suppressions_beside

    app_state = state(ctx)
    with app_state.reader() as store:
        attach_suppressions_beside(app_state.db_path, store, app_state.lock_timeout)
        report = validate_campaign(
            store, file, settings=app_state.settings, as_of=_as_of(ctx, store, as_of), sample=sample
        )
    rows = _report_rows(report)
    json_data = {
        "file": str(report.path),
        "campaign": report.campaign,
        "as_of": report.as_of.isoformat(),
        "ok": report.ok,
        "recipients": report.recipients,
        "candidate_products": report.candidates,
        "variants": rows,
        "problems": report.problems,
        "warnings": report.warnings,
    }
    emit_rows(rows, fmt, title=f"{report.campaign} ({report.as_of})", json_data=json_data)
    console = stderr_console()
    for warning in report.warnings:
        if not app_state.quiet:
            console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for problem in report.problems:
        console.print(f"[bold red]error:[/] {problem}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)
    say(ctx, f"{file}: valid; {report.recipients:,} recipients, {report.candidates:,} candidate products.")


@app.command("preview")
def campaign_preview_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The campaign YAML file.")],
    customer: Annotated[str, typer.Option("--customer", help="The customer id to render the email for.")],
    out: Annotated[
        Path, typer.Option("--out", help="HTML file to write (the text part goes beside it, as .txt).")
    ] = Path("preview.html"),
    as_of: AsOfOption = None,
    images: Annotated[
        Path | None,
        typer.Option(
            "--images",
            help="Folder of local product pictures: an image at <shop.url>/img/NAME is shown from NAME there "
            "(default: img/ or data/img/ beside the campaigns folder, if present).",
        ),
    ] = None,
) -> None:
    """Render the email one customer would get and write it as HTML (and .txt) to open in a browser.

    Example: pleasepoint campaign preview campaigns/x.yaml --customer C0000042 --out preview.html
    """
    from pleasepoint_cli.campaign.validate import inline_local_images, preview
    from pleasepoint_cli.ops.suppression import attach_suppressions_beside

    app_state = state(ctx)
    with app_state.reader() as store:
        attach_suppressions_beside(app_state.db_path, store, app_state.lock_timeout)
        result = preview(store, file, customer, settings=app_state.settings, as_of=_as_of(ctx, store, as_of))
    email = result.email
    from pleasepoint_cli.outfiles import output_path

    text_path = out.with_suffix(".txt")
    html = email.html
    project = file.resolve().parent.parent
    folder = images or next((p for p in (project / "img", project / "data" / "img") if p.is_dir()), None)
    if folder is not None:
        html, shown = inline_local_images(html, app_state.settings.shop.url, folder)
        if shown:
            say(ctx, f"{shown} local pictures from {folder} shown in the preview.")
    # Each part whole or not at all: written beside its target and renamed once complete (the text part
    # first, so a failure of either leaves no HTML behind).
    with output_path(out) as html_temp:
        html_temp.write_text(html, encoding="utf-8")
        with output_path(text_path) as text_temp:
            text_temp.write_text(email.text, encoding="utf-8")
    if not result.in_audience:
        say(
            ctx,
            f"[yellow]note:[/] customer {customer} is not in the campaign's audience: they would not get it.",
        )
    say(ctx, f"to: {email.to_name} <{email.to}>  variant: {email.variant}\nsubject: {email.subject}")
    typer.echo(f"{out}\n{text_path}")


@app.command("list")
def campaign_list_command(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Option("--dir", help="Folder of campaign files.")] = Path("campaigns"),
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The campaign files of a folder: name, variants, templates and subject, or why one does not load."""
    from dataclasses import asdict

    from pleasepoint_cli.campaign.create import list_campaigns

    rows = [asdict(summary) for summary in list_campaigns(directory)]
    emit_rows(
        rows,
        fmt,
        title=str(directory),
        columns=["file", "name", "variants", "templates", "subject", "problem"],
    )


def _base_dir(ctx: typer.Context) -> Path:
    """The folder `delivery:` paths are relative to: the settings file's, else the working directory."""
    config = state(ctx).config
    return config.parent if config is not None else Path()


def outbox_dir(ctx: typer.Context) -> Path:
    """delivery.outbox_dir, resolved against the settings file's folder."""
    configured = Path(state(ctx).settings.delivery.outbox_dir)
    return configured if configured.is_absolute() else _base_dir(ctx) / configured


@contextmanager
def _send_progress(ctx: typer.Context, label: str) -> Iterator[Callable[[int, int], None]]:
    """A bar on stderr while messages go out (silent with --quiet or when stderr is not a terminal)."""
    if state(ctx).quiet or not sys.stderr.isatty():
        yield lambda _done, _total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pleasepoint_cli.cli._common import stderr_console

    bar = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=stderr_console()
    )
    task = bar.add_task(label, total=None)
    with bar:
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print_summary(ctx: typer.Context, summary: SendSummary, fmt: OutputFormat) -> None:
    data = summary.as_json()
    if fmt is OutputFormat.json:
        emit_json(data)
    else:
        rows = [
            {"outcome": key, "messages": data[key]}
            for key in ("sent", "bounced", "failed", "suppressed", "skipped", "capped", "uncertain")
        ]
        rows += [
            {"outcome": f"skipped: {reason}", "messages": n} for reason, n in summary.skipped_reasons.items()
        ]
        emit_rows(rows, fmt, title=f"{summary.campaign} ({summary.kind})", columns=["outcome", "messages"])
    if summary.uncertain:
        say(
            ctx,
            f"[yellow]{summary.uncertain} uncertain[/]: a previous run died after claiming them and before the "
            "server's answer was recorded; they may have been delivered. Resend them with --retry-uncertain.",
        )
    for error in summary.run.errors[:10]:
        say(ctx, f"[yellow]{error['status']}:[/] {error['customer_id']}: {error['error']}")


@app.command("send")
def campaign_send_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The campaign YAML file.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan and count only: nothing written or sent.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=0, help="Send at most N messages this run.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    retry_uncertain: Annotated[
        bool, typer.Option("--retry-uncertain", help="Also resend rows left uncertain by a run that died.")
    ] = False,
    now: Annotated[
        str | None,
        typer.Option("--now", help="The send's clock (ISO 8601; no offset = shop time). Default: now."),
    ] = None,
    test_csv: Annotated[
        Path | None,
        typer.Option("--test-csv", help="Test send: to the addresses of this CSV, subject [TEST]."),
    ] = None,
    customer: Annotated[
        str | None, typer.Option("--customer", help="With --test-csv: render for this customer.")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Send the campaign: plan its audience into the send ledger, then send what is queued.

    Asks first unless --yes. Run again, it continues where it stopped and mails nobody twice; a second send of
    the same campaign waits --lock-timeout seconds, then exits 75. Example: pleasepoint campaign send
    campaigns/rebajas.yaml --yes
    """
    from pleasepoint_cli.cli._common import sending_clock
    from pleasepoint_cli.delivery.send import CampaignSend, read_test_addresses, send_test

    app_state = state(ctx)
    settings = app_state.settings
    moment = sending_clock(ctx, now)
    if test_csv is not None:
        addresses = read_test_addresses(test_csv)
        with _send_progress(ctx, "test send") as progress:
            summary = send_test(
                app_state.db_path, file, settings, addresses, now=moment, customer=customer,
                lock_timeout=app_state.lock_timeout, base_dir=_base_dir(ctx), progress=progress,
            )  # fmt: skip
        _print_summary(ctx, summary, fmt)
        raise typer.Exit(1 if summary.aborted else 0)
    if customer is not None:
        raise typer.BadParameter("--customer goes with --test-csv.", param_hint="--customer")
    with CampaignSend(
        app_state.db_path, file, settings, now=moment, lock_timeout=app_state.lock_timeout,
        base_dir=_base_dir(ctx), dry_run=dry_run,
    ) as send:  # fmt: skip
        plan = send.plan()
        to_send = plan.to_send + (plan.uncertain if retry_uncertain else 0)
        if limit is not None:
            to_send = min(to_send, limit)
        parts = [f"{plan.new:,} new"] + [f"{n:,} {status}" for status, n in plan.already.items()]
        if plan.capped:
            parts.append(f"{len(plan.capped):,} capped by marketing.global_cap")
        if plan.uncertain:
            parts.append(f"{plan.uncertain:,} uncertain")
        say(
            ctx,
            f"{plan.name}: audience {plan.audience:,} ({', '.join(parts)}); {to_send:,} to send "
            f"via {settings.delivery.transport}.",
        )
        if dry_run:
            if fmt is OutputFormat.json:
                emit_json({**plan.as_json(), "dry_run": True, "would_send": to_send})
            return
        if to_send and not yes:
            if not sys.stdin.isatty():
                stderr_console().print(
                    "[bold red]error:[/] no terminal to confirm the send: pass --yes to send without asking.",
                    highlight=False,
                )
                raise typer.Exit(1)
            if not typer.confirm(f"Send {to_send:,} messages of {plan.name!r}?", default=False, err=True):
                say(ctx, "nothing sent.")
                raise typer.Exit(1)
        send.queue(plan, retry_uncertain=retry_uncertain)
        with _send_progress(ctx, "sending") as progress:
            summary = send.run(limit=limit, progress=progress)
    _print_summary(ctx, summary, fmt)
    if summary.aborted:
        stderr_console().print(
            f"[bold red]error:[/] {summary.aborted}; the rest stays queued.", highlight=False
        )
        raise typer.Exit(1)


@app.command("status")
def campaign_status_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The campaign YAML file.")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The campaign's send ledger: messages per status, first and last send time, test sends apart."""
    from pleasepoint_cli.campaign.model import load_campaign
    from pleasepoint_cli.ops import ledger, open_ops

    app_state = state(ctx)
    campaign = load_campaign(file)
    with open_ops(app_state.db_path, busy_timeout=app_state.lock_timeout) as ops:
        totals = ledger.counts(ops, "campaign", campaign.slug, "")
        tests = ledger.counts(ops, "test", campaign.slug)
        reasons = ledger.skipped_reasons(ops, "campaign", campaign.slug, "")
    if fmt is OutputFormat.json:
        emit_json({**totals.as_json(), "skipped_by_reason": reasons, "test_sends": tests.counts["sent"]})
        return
    rows = [{"status": status, "messages": n} for status, n in totals.counts.items() if n]
    emit_rows(rows, fmt, title=f"{campaign.slug}", columns=["status", "messages"])
    say(
        ctx,
        f"first sent {totals.first_sent_at or '-'}, last sent {totals.last_sent_at or '-'}; "
        f"{tests.counts['sent']} test messages.",
    )


audience_cmd.register(app)  # `campaign audience FILE`: the funnel, from the audience sub-module
