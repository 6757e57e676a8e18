"""Durability: every usage record reaches the ledger, and every outbox its receiver, whatever
fails in between: the spool, the ledger writer, export and alert delivery."""
