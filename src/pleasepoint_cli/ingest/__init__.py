"""Loading shop exports (orders, customers, products, stores) into the store, atomically and idempotently."""
