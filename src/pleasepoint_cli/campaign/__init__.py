"""One-off campaigns: the YAML model, create (from a cluster or a filter), validate, preview, list."""
