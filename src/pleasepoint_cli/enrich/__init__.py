"""CRM enrichment: attributes written on the members of persona clusters, with history and undo.

One concept per module: `runs` (which run and cluster a command means), `cluster` (key=value on a cluster,
and clearing it), `table` (the guide's whole enrichment table from a YAML file), `levels` (labels,
propensity levels and top variables from a run's profile) and `history` (listing and undoing changes).
"""
