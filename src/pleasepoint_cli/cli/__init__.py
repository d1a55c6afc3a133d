"""The `pleasepoint` command: global options, the sub-apps, and the one place errors become exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from pleasepoint_cli import __version__
from pleasepoint_cli.cli._common import AppState
from pleasepoint_cli.errors import PleasepointError


class PleasepointGroup(TyperGroup):
    """The root group: turns a PleasepointError from any command into its message and exit code."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except PleasepointError as e:
            from rich.markup import escape

            from pleasepoint_cli.cli._common import stderr_console

            stderr_console().print(f"[bold red]error:[/] {escape(str(e))}", markup=True, highlight=False)
            raise typer.Exit(e.exit_code) from e
        except Exception as e:
            duckdb = sys.modules.get("duckdb")
            if duckdb is None or not isinstance(e, duckdb.Error):
                raise
            # A query the store did not wrap (a damaged file, a table dropped by hand): one line, exit 1.
            lines = str(e).strip().splitlines() or [type(e).__name__]
            typer.echo(f"error: the database refused a query: {lines[0]}", err=True)
            raise typer.Exit(1) from e
        except KeyboardInterrupt:
            typer.echo("interrupted: nothing was half-written.", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=PleasepointGroup,
    name="pleasepoint",
    help="Customer personas, CRM enrichment, CLV and personalised email for an e-commerce shop, "
    "from one DuckDB file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pleasepoint {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="Database file. Default: $PLEASEPOINT_DB, then db: in pleasepoint.yaml, "
            "then ./pleasepoint.duckdb.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Settings file (default ./pleasepoint.yaml when it exists).", show_default=False
        ),
    ] = None,
    lock_timeout: Annotated[
        float,
        typer.Option(
            "--lock-timeout",
            min=0,
            help="Seconds to wait while another process holds the database; then exit 75.",
        ),
    ] = 30.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or messages on stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """pleasepoint: load a shop, find its customer personas, enrich the CRM, score CLV, send campaigns."""
    ctx.obj = AppState(db=db, config=config, lock_timeout=lock_timeout, quiet=quiet)


def _register() -> None:
    """The command groups, in the order of the workflow (each module imports only typer at load)."""
    from pleasepoint_cli.cli import (
        automate,
        campaign,
        clv,
        customers,
        demo,
        enrich,
        events,
        ingest,
        persona,
        setup,
        stats,
        suppress,
        track,
    )

    setup.register(app)
    demo.register(app)
    app.add_typer(ingest.app, name="ingest")
    app.add_typer(persona.app, name="persona")
    app.add_typer(enrich.app, name="enrich")
    app.add_typer(clv.app, name="clv")
    app.add_typer(customers.app, name="customers")
    app.add_typer(campaign.app, name="campaign")
    automate.register(app)
    suppress.register(app)
    app.add_typer(events.app, name="events")
    stats.register(app)
    app.add_typer(track.app, name="track")


_register()


def _stdout_failed(error: OSError) -> None:
    """Say in one line that the output could not be written, then make sure nothing tries again at exit."""
    import os
    import sys

    reason = error.strerror or str(error)
    where = error.filename or "standard output"
    try:
        sys.stderr.write(
            f"error: cannot write to {where}: {reason} (closed or full); the output is incomplete.\n"
        )
        sys.stderr.flush()
    except OSError:
        pass
    try:  # the interpreter flushes stdout at exit: point it at /dev/null so that flush cannot fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _valued_options() -> set[str]:
    """The root's options that take a value (`--db PATH`), read from `root` itself so a new one is known."""
    from typer.models import OptionInfo
    from typer.utils import get_params_from_function

    return {
        name
        for param in get_params_from_function(root).values()
        if isinstance(param.default, OptionInfo) and param.annotation is not bool
        for name in param.default.param_decls or ()
    }


def _invoked_command(argv: list[str]) -> str | None:
    """The top-level command or group named on the command line (after the global options), if any."""
    valued = _valued_options()
    args = iter(argv)
    for arg in args:
        if arg in valued:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def _root_for(name: str | None) -> typer.Typer:
    """The root with only the named command or group, so the one invoked is the one Typer converts to click:
    converting all of them took 0.07 s of every run, a third of `pleasepoint --help` (which keeps them all).
    A copy: `app` itself stays whole for the commands that run others in-process (`demo`). An unknown name
    gets the whole root, for click's own "No such command"."""
    import copy

    commands = [c for c in app.registered_commands if c.name == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if not (commands or groups):
        return app
    root = copy.copy(app)
    root.registered_commands, root.registered_groups = commands, groups
    return root


def main() -> None:
    """Console-script entry point. A closed or full standard output (`| head -c 10`, `> /dev/full`) is a
    one-line error with exit 1, not a traceback."""
    import sys

    root = _root_for(_invoked_command(sys.argv[1:]))
    code: int | str | None = 0
    try:
        root()
    except SystemExit as e:
        code = e.code
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":  # click met a closed pipe mid-write
            _stdout_failed(BrokenPipeError(32, "Broken pipe"))
            code = 1
    except OSError as e:  # e.g. ENOSPC while writing a long output
        _stdout_failed(e)
        code = 1
    try:
        sys.stdout.flush()
    except OSError as e:
        _stdout_failed(e)
        code = 1
    _leave(code)


def _leave(code: int | str | None) -> NoReturn:
    """Exit with `code`, without the interpreter's teardown: freeing every module's objects one by one
    (pydantic, Typer, Rich, NumPy, DuckDB) took 0.05-0.07 s of every command, for memory the system takes
    back at once (docs/performance.md). What the teardown does for others still runs: the other threads are
    joined (one still running after a second sends us out the normal way), then the `atexit` handlers
    (temporary folders, process pools, logging), then both outputs are flushed. Every store is closed by
    now: the command's own `with` blocks closed them."""
    import atexit
    import os
    import threading
    import time

    deadline = time.monotonic() + 1.0
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(timeout=max(deadline - time.monotonic(), 0.0))
            if thread.is_alive():
                sys.exit(code)
    if isinstance(code, str):
        sys.stderr.write(f"{code}\n")
    status = 0 if code is None else code if isinstance(code, int) else 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 1
    os._exit(status)
