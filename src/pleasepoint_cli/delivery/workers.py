"""Render and build a send's messages in worker processes, so the sending process keeps its interpreter for
the ledger and the SMTP connections.

Why processes and not threads: rendering (Jinja) and MIME building are pure Python and hold the interpreter
lock; one `campaign send` interpreter rendering, building, committing the ledger and speaking SMTP ran 350
messages/s at a million customers against a floor of 1,467/s for sending pre-built bytes (docs/performance.md),
and did not speed up on a quieter machine. More threads only queue on the same lock.

What moves and what stays:
- A worker receives a chunk of recipients (send id, customer, variant, and the rows the DuckDB step read for
  the customer's context) and a date; it assembles each context, renders and builds, and returns one
  `Job` per recipient: the message's bytes, or why it fails or is skipped. It never opens the ledger, DuckDB or
  a connection to the server, so it cannot send anything, and a worker that dies loses nothing but rendering.
- The sending process keeps the DuckDB context step, the ledger's claim (`sending`, committed before the first
  byte goes out) and settle, and the SMTP connections: every safety property of `delivery/send.py` is decided
  there, as before.

The pool is started with the `spawn` method (a fresh interpreter, never a `fork` of a process whose DuckDB and
threads are live). The compiled templates, the message builder and its DKIM key are pickled to each worker at
start (templates as their sources: see `CompiledTemplate.__reduce__`). A worker ignores Ctrl-C (the sending
process settles its messages in flight, then shuts the pool down) and exits by itself if the sending process
dies (SIGKILL included).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pleasepoint_cli.campaign.prepare import Renderer
    from pleasepoint_cli.content.context import ContextBuilder, ContextPart
    from pleasepoint_cli.delivery.message import MessageBuilder as Builder
    from pleasepoint_cli.delivery.send import Job

WORKERS_ENV = "PLEASEPOINT_SEND_WORKERS"
"""Environment override of the worker count (0: render in the sending process)."""
MIN_ROWS = 1000
"""Below this many messages a send renders in its own process: starting a worker (a fresh interpreter that
imports the renderer) costs about half a second."""
CHUNK = 250
"""Recipients per task sent to a worker: small enough that the first messages come back at once, large
enough that the pickling overhead per task is noise."""

Item = tuple[str, str, int, "ContextPart | None"]
"""(send id, customer id, variant index, the customer's context rows, or None when they are gone)."""


def worker_count(rows: int) -> int:
    """How many worker processes a send of `rows` messages uses: `$PLEASEPOINT_SEND_WORKERS` when set, else
    none below MIN_ROWS, else two (one on a single core). Two were as fast as one or faster on this 2-core
    machine under load 6 (653-751/s against 653-700/s at 200,000 customers): the sending process waits on
    the network and the ledger much of the time, so it does not need a core of its own."""
    value = os.environ.get(WORKERS_ENV, "").strip()
    if value:
        try:
            return max(0, int(value))
        except ValueError:
            return 0
    if rows < MIN_ROWS:
        return 0
    return 2 if (os.cpu_count() or 1) >= 2 else 1


class MessageWorkers:
    """A pool of render worker processes for one send (use as a context manager; `start` when the campaign is
    prepared, then `submit` chunks of recipients)."""

    def __init__(self, count: int, builder: Builder) -> None:
        self.count = max(1, count)
        self.builder = builder
        self._executor: ProcessPoolExecutor | None = None
        self._renderer: Renderer | None = None

    def start(self, renderer: Renderer, contexts: ContextBuilder) -> None:
        """Start the workers for this renderer and context builder (once; a second call with the same
        renderer does nothing)."""
        if self._executor is not None:
            if renderer is not self._renderer:
                raise RuntimeError("a MessageWorkers pool renders one campaign")
            return
        import multiprocessing

        self._renderer = renderer
        self._executor = ProcessPoolExecutor(
            max_workers=self.count,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_initialise,
            initargs=(renderer, contexts, self.builder, os.getpid()),
        )

    def submit(self, items: Sequence[Item], date: datetime) -> Future[list[Job]]:
        if self._executor is None:
            raise RuntimeError("start the workers first")
        return self._executor.submit(build_chunk, list(items), date)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> MessageWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- In the worker process ---------------------------------------------------------------------------

_state: (
    tuple[Callable[..., Any], Callable[..., dict[str, Any]], Callable[[Any, str, datetime], bytes]] | None
) = None


def _initialise(renderer: Renderer, contexts: ContextBuilder, builder: Builder, parent: int) -> None:
    global _state
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sending process decides what Ctrl-C stops
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()

    def build(email: Any, send_id: str, date: datetime) -> bytes:
        return builder.build(email, send_id=send_id, date=date)

    _state = (renderer.render, contexts.context_of, build)


def _exit_with_parent(parent: int) -> None:
    """Exit when the sending process is gone (a spawned worker is its child: it is re-parented then)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def build_chunk(items: list[Item], date: datetime) -> list[Job]:
    """The jobs of a chunk of recipients (run in a worker): each context assembled, rendered, built."""
    from pleasepoint_cli.delivery.send import make_job

    assert _state is not None, "the worker was not initialised"
    render, context_of, build = _state
    return [
        make_job(render, build, send_id, customer, variant, None if part is None else context_of(part), date)
        for send_id, customer, variant, part in items
    ]


__all__ = ["CHUNK", "MIN_ROWS", "WORKERS_ENV", "Item", "MessageWorkers", "build_chunk", "worker_count"]
