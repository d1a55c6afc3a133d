"""The example shop: a seeded eco-supermarket with planted personas, for `pleasepoint demo` and the bench."""
