"""What every table shares: the one MetaData, and the revision column the mirror syncs by."""

from sqlalchemy import BigInteger, Column, MetaData

metadata = MetaData()

CHANGES_CHANNEL = "billing_proxy_changes"  # NOTIFY channel: keys, tenants or prices changed


def revision_column() -> Column:
    # Set by a trigger from one sequence on every insert/update, so a replica can ask
    # "what changed since revision N?" with one indexed query.
    return Column("revision", BigInteger, nullable=False, server_default="0", index=True)
