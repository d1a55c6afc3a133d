"""The audience rule language: YAML rules (model, parse), compiled to one parameterised SQL query (compile),
checked against the store (validate), run as a customer list or a funnel (select). See docs/audiences.md.
"""

from __future__ import annotations

from pleasepoint_cli.audience.compile import GUARDS, CompiledAudience, compile_rule
from pleasepoint_cli.audience.describe import describe
from pleasepoint_cli.audience.facts import (
    order_facts_sql,
    pattern_facts_sql,
    preferred_store_sql,
)
from pleasepoint_cli.audience.model import Rule, rule_to_data
from pleasepoint_cli.audience.parse import load_audience, parse_rule
from pleasepoint_cli.audience.select import FunnelStep, count_customers, funnel, select_customers
from pleasepoint_cli.audience.validate import validate_rule

__all__ = [
    "GUARDS",
    "CompiledAudience",
    "FunnelStep",
    "Rule",
    "compile_rule",
    "count_customers",
    "describe",
    "funnel",
    "load_audience",
    "order_facts_sql",
    "parse_rule",
    "pattern_facts_sql",
    "preferred_store_sql",
    "rule_to_data",
    "select_customers",
    "validate_rule",
]
