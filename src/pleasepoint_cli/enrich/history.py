"""`enrich history`, `enrich changes` and `enrich undo`: every attribute change is kept and can be undone."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.attributes import AttributeChange, write_attributes
from pleasepoint_cli.errors import NotFoundError, PleasepointError
from pleasepoint_cli.store.connection import writer

if TYPE_CHECKING:
    from pleasepoint_cli.store.connection import Store

    pass


def customer_exists(store: Store, customer_id: str) -> bool:
    """Whether the store knows the customer: a profile, an order line or an attribute."""
    row = store.first(
        """
        SELECT EXISTS (SELECT 1 FROM customers WHERE customer_id = $id)
            OR EXISTS (SELECT 1 FROM order_lines WHERE customer_id = $id)
            OR EXISTS (SELECT 1 FROM attribute_history WHERE customer_id = $id)
        """,
        {"id": customer_id},
    )
    return bool(row and row[0])


def customer_history(store: Store, customer_id: str) -> list[dict[str, Any]]:
    """Every change of the customer's attributes, newest first, with the batch that made it."""
    if not customer_exists(store, customer_id):
        raise NotFoundError(f"no customer {customer_id!r} in the store (check the id; ids are text).")
    return store.rows(
        """
        SELECT h.change_id, h.changed_at, h.key, h.old_value, h.new_value, c.kind, c.source, c.undone_by
        FROM attribute_history h JOIN attribute_changes c USING (change_id)
        WHERE h.customer_id = ?
        ORDER BY h.change_id DESC, h.key
        """,
        [customer_id],
    )


def list_changes(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    """The newest change batches: what made them, how many values and customers changed, undone or not."""
    return store.rows(
        """
        SELECT c.change_id, c.made_at, c.kind, c.description,
               count(h.customer_id) AS changed, count(DISTINCT h.customer_id) AS customers, c.undone_by
        FROM attribute_changes c LEFT JOIN attribute_history h USING (change_id)
        GROUP BY ALL
        ORDER BY c.change_id DESC
        LIMIT ?
        """,
        [limit],
    )


@writer
def undo_change(store: Store, change_id: int, now: datetime | None = None) -> AttributeChange:
    """Restore the values a change replaced, where its values are still current, as a new change.

    A value is still current when the customer's key still holds what the change wrote (or is still absent
    where it removed one); values changed since are left alone. The undone change is marked as undone.
    """
    row = store.first(
        "SELECT kind, description, undone_by FROM attribute_changes WHERE change_id = ?", [change_id]
    )
    if row is None:
        raise NotFoundError(f"no attribute change {change_id} (see `pleasepoint enrich changes`).")
    _, description, undone_by = row
    if undone_by is not None:
        raise PleasepointError(
            f"change {change_id} was already undone by change {undone_by}; undo {undone_by} to bring it back."
        )
    when = now or datetime.now()
    change = write_attributes(
        store,
        """
        SELECT h.customer_id, h.key, h.old_value, h.old_source
        FROM attribute_history h LEFT JOIN customer_attributes cur USING (customer_id, key)
        WHERE h.change_id = ? AND cur.value IS NOT DISTINCT FROM h.new_value
        """,
        [change_id],
        source=f"undo change {change_id}",
        kind="undo",
        description=f"undo change {change_id} ({description})",
        spec={"undo": change_id},
        now=when,
        row_source=True,
    )
    store.execute(
        "UPDATE attribute_changes SET undone_at = ?, undone_by = ? WHERE change_id = ?",
        [when, change.change_id, change_id],
    )
    return change
