"""`pleasepoint campaign create|validate|preview|list`: one-off email campaigns from YAML and MJML."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pleasepoint_cli.cli import audience_cmd
from pleasepoint_cli.cli._common import FormatOption, OutputFormat, emit_rows, parse_as_of, say, state

if TYPE_CHECKING:
    from pleasepoint_cli.campaign.validate import ValidationReport

app = typer.Typer(
    help="One-off email campaigns: create them from a cluster or a filter, see their audience funnel, "
    "validate, preview, list.",
    no_args_is_help=True,
)

AsOfOption = typer.Option(
    None, "--as-of", help="The send date (YYYY-MM-DD) for audiences, offers and recency. Default: today."
)


def _as_of(value: str | None) -> date:
    return parse_as_of(value) or date.today()


@app.command("create")
def campaign_create_command(
    ctx: typer.Context,
    from_cluster: str | None = typer.Option(
        None, "--from-cluster", metavar="RUN:CLUSTER", help="A persona cluster, e.g. latest:3 or 12:1."
    ),
    from_filter: str | None = typer.Option(
        None,
        "--from-filter",
        metavar="FILE|KEY=VALUE",
        help="A rule YAML file (its `audience:`) or an attribute filter such as segmento='Sólo huerto'.",
    ),
    directory: Path = typer.Option(Path("campaigns"), "--dir", help="Folder of campaign files."),
    force: bool = typer.Option(False, "--force", help="Overwrite the campaign and template if they exist."),
) -> None:
    """Write campaigns/<name>.yaml with its audience set, and a starter template in templates/.

    Example: pleasepoint campaign create --from-cluster latest:1
    """
    from pleasepoint_cli.campaign.create import create_from_cluster, create_from_filter
    from pleasepoint_cli.campaign.model import load_campaign

    if (from_cluster is None) == (from_filter is None):
        raise typer.BadParameter("give one of --from-cluster RUN:CLUSTER or --from-filter FILE|KEY=VALUE.")
    with state(ctx).store() as store, store.transaction() as con:
        if from_cluster is not None:
            run, sep, cluster = from_cluster.rpartition(":")
            if not sep or not run or not cluster.strip().isdigit():
                raise typer.BadParameter(
                    f"{from_cluster!r}: expected RUN:CLUSTER, e.g. latest:3.", param_hint="--from-cluster"
                )
            path = create_from_cluster(con, run, int(cluster), directory, force=force)
        else:
            assert from_filter is not None
            path = create_from_filter(con, from_filter, directory, force=force)
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
    file: Path = typer.Argument(..., help="The campaign YAML file."),
    sample: int = typer.Option(
        20, "--sample", min=0, help="Recipients of each variant to render (0: every one of them)."
    ),
    as_of: str | None = AsOfOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Check the YAML, the audience rules and the templates, rendering for a sample of real recipients.

    Exit 1 on any problem, each with its file and line. Example: pleasepoint campaign validate campaigns/x.yaml
    """
    from pleasepoint_cli.campaign.validate import validate_campaign
    from pleasepoint_cli.cli._common import stderr_console

    app_state = state(ctx)
    with app_state.store() as store, store.transaction() as con:
        report = validate_campaign(con, file, settings=app_state.settings, as_of=_as_of(as_of), sample=sample)
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
    file: Path = typer.Argument(..., help="The campaign YAML file."),
    customer: str = typer.Option(..., "--customer", help="The customer id to render the email for."),
    out: Path = typer.Option(
        Path("preview.html"), "--out", help="HTML file to write (the text part goes beside it, as .txt)."
    ),
    as_of: str | None = AsOfOption,
) -> None:
    """Render the email one customer would get and write it as HTML (and .txt) to open in a browser.

    Example: pleasepoint campaign preview campaigns/x.yaml --customer C0000042 --out preview.html
    """
    from pleasepoint_cli.campaign.validate import preview

    app_state = state(ctx)
    with app_state.store() as store, store.transaction() as con:
        result = preview(con, file, customer, settings=app_state.settings, as_of=_as_of(as_of))
    email = result.email
    from pleasepoint_cli.outfiles import output_path

    text_path = out.with_suffix(".txt")
    # Each part whole or not at all: written beside its target and renamed once complete (the text part
    # first, so a failure of either leaves no HTML behind).
    with output_path(out) as html_temp:
        html_temp.write_text(email.html, encoding="utf-8")
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
    directory: Path = typer.Option(Path("campaigns"), "--dir", help="Folder of campaign files."),
    fmt: OutputFormat = FormatOption,
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


audience_cmd.register(app)  # `campaign audience FILE`: the funnel, from the audience sub-module
