"""Automations: scheduled and triggered emails sent by `automate tick` through the send ledger (docs/automations.md)."""
