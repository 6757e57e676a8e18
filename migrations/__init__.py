"""Alembic migrations of billing-proxy (a package so that installs carry them)."""
