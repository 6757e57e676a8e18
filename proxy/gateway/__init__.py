"""The request path: what a team's key calls. Authenticate, parse, admit, relay to the
upstream, capture what it bills, hand the entry to durability."""
