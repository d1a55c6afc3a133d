"""Statistics of sends and engagement (compute) and their terminal chart and HTML report (chart)."""
