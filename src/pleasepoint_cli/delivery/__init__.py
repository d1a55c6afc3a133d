"""Delivery: building each message, the transports (outbox, SMTP) and the send engine with its ledger."""
