"""pleasepoint: customer personas, CRM enrichment, CLV and personalised email from one DuckDB file."""

__version__ = "0.1.0"
