"""Loading the generated example shop into a store: one writer, so the demo command opens no transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pleasepoint_cli.store.connection import writer

if TYPE_CHECKING:
    from pleasepoint_cli.demo.generator import ShopFiles
    from pleasepoint_cli.ingest.loader import IngestReport
    from pleasepoint_cli.store import Store


@writer
def load_example_shop(store: Store, shop: ShopFiles) -> list[tuple[str, IngestReport]]:
    """Ingest the shop's stores, products, customers and orders, in that order: all four, or none."""
    from pleasepoint_cli.ingest.loader import ingest_file

    return [
        (entity, ingest_file(store, entity, file))
        for entity, file in (
            ("stores", shop.stores),
            ("products", shop.products),
            ("customers", shop.customers),
            ("orders", shop.orders),
        )
    ]
