"""Customer-persona analysis: a feature matrix built in SQL, seeded k-means, the propensity profile, stored runs.

`runs.run_persona` does a whole run; `runs.compute_run` recomputes one without storing (used by verify).
"""
