"""billing: the domain of billing-proxy (usage, pricing, keys, ledger) and its database adapters."""
