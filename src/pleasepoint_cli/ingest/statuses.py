"""The order status vocabulary: what an export's status values mean, and which ones count as purchases.

Every status is stored canonical: `completed`, `cancelled`, `returned` or `pending` (docs/ingest.md). Common
export values (English, Spanish, Portuguese; Shopify, WooCommerce, marketplace exports) map to them at
ingest; a value outside the vocabulary is kept lower-cased. An order line counts in an analysis (CLV, RFM,
personas, audiences, contexts, automations) when it is in the view `purchase_lines`: its status is one of
`ingest.purchase_statuses` (default: completed; no status counts as completed), or it is a return
(negative quantity, status returned), which nets the customer's spend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store

    pass

CANONICAL = ("completed", "cancelled", "returned", "pending")

VOCABULARY: dict[str, tuple[str, ...]] = {
    "completed": (
        "completed",
        "complete",
        "completado",
        "completada",
        "completo",
        "completa",
        "concluido",
        "concluído",
        "delivered",
        "entregado",
        "entregada",
        "entregue",
        "shipped",
        "enviado",
        "enviada",
        "fulfilled",
        "paid",
        "partially_refunded",
        "partially refunded",
        "pagado",
        "pagada",
        "pago",
        "invoiced",
        "facturado",
        "faturado",
        "closed",
        "cerrado",
        "finalizado",
        "finalizada",
        "done",
        "success",
        "successful",
        "approved",
        "aprobado",
        "aprovado",
        "ok",
    ),
    "cancelled": (
        "cancelled",
        "canceled",
        "cancel",
        "cancelado",
        "cancelada",
        "anulado",
        "anulada",
        "voided",
        "void",
        "unavailable",
        "indisponível",
        "indisponivel",
        "failed",
        "fallido",
        "fallida",
        "falhou",
        "rejected",
        "rechazado",
        "declined",
        "expired",
        "trash",
        "deleted",
        "eliminado",
    ),
    "returned": (
        "returned",
        "return",
        "refunded",
        "refund",
        "devuelto",
        "devuelta",
        "devolución",
        "devolucion",
        "reembolsado",
        "reembolsada",
        "devolvido",
        "devolvida",
        "estornado",
        "reembolso",
    ),
    "pending": (
        "pending",
        "authorized",
        "partially_paid",
        "pendiente",
        "pendente",
        "processing",
        "procesando",
        "processando",
        "en proceso",
        "on-hold",
        "on hold",
        "en espera",
        "created",
        "creado",
        "criado",
        "new",
        "nuevo",
        "novo",
        "awaiting payment",
        "unpaid",
        "open",
        "abierto",
        "draft",
        "checkout-draft",
        "pending payment",
    ),
}
"""Export values (compared lower-cased and trimmed; WooCommerce's `wc-` prefix too) to the canonical status."""


PURCHASE_LINES_VIEW = """
CREATE OR REPLACE VIEW purchase_lines AS
SELECT * FROM order_lines
WHERE (quantity < 0 AND status = 'returned')
   OR order_id NOT IN (
        SELECT order_id FROM order_lines
        WHERE order_id IS NOT NULL AND status IS NOT NULL AND status NOT IN (SELECT status FROM purchase_statuses)
          AND NOT (quantity < 0 AND status = 'returned'))
"""
"""The one definition of the order lines an analysis counts: the lines of orders none of whose lines has a
status outside `purchase_statuses` (no status counts as completed), and returns (a negative quantity whose
status is `returned`), which net the spend. The rule is per order: exports such as Shopify's write the
order's status on its first line only, and a cancelled order is cancelled whole."""


def record_purchase_statuses(store: Store, statuses: list[str]) -> None:
    """Make `purchase_statuses` hold exactly these (canonical) statuses, writing only when they differ."""
    wanted = sorted({canonical_status(s) for s in statuses})
    stored = sorted(str(r[0]) for r in store.tuples("SELECT status FROM purchase_statuses"))
    if stored != wanted:
        store.execute("DELETE FROM purchase_statuses")
        store.execute(f"INSERT INTO purchase_statuses VALUES {', '.join(f'({_literal(s)})' for s in wanted)}")


def canonical_status_sql(value: str) -> str:
    """SQL mapping a status value to its canonical name (NULL stays NULL; a value outside the vocabulary is
    lower-cased and trimmed). One IN list per canonical status over the lower-cased value."""
    lowered = f"lower(trim({value}))"
    whens = " ".join(
        f"WHEN {lowered} IN ({', '.join(_literal(x) for x in (*values, *(f'wc-{v}' for v in values)))}) "
        f"THEN '{canonical}'"
        for canonical, values in VOCABULARY.items()
    )
    return f"CASE WHEN {value} IS NULL THEN NULL {whens} ELSE {lowered} END"


def status_spellings_sql() -> str:
    """A relation `(spelling, canonical)` of every spelling of the vocabulary (lower-case, with and without
    WooCommerce's `wc-` prefix). Joined on a status column it maps the values spelled as listed at one hash
    probe a row; `canonical_status_sql` is for the rest (it lower-cases and trims every value once per
    canonical status: about a quarter of DuckDB's own load of an order file, were it run on every line)."""
    pairs = ", ".join(
        f"({_literal(spelling)}, '{canonical}')"
        for canonical, values in VOCABULARY.items()
        for spelling in (*values, *(f"wc-{v}" for v in values))
    )
    return f"(VALUES {pairs}) AS _spellings(spelling, canonical)"


def canonical_status(value: str) -> str:
    """The canonical name of one status value (a value outside the vocabulary: lower-cased and trimmed)."""
    lowered = value.strip().lower()
    for canonical, values in VOCABULARY.items():
        if lowered in values or lowered.removeprefix("wc-") in values:
            return canonical
    return lowered


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
