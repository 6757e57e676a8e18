"""The admin API's request and response bodies. The same models validate requests,
serialise responses and generate the OpenAPI document, so the three cannot drift apart:
`fields` (what they are made of), `accounts` (tenants, credit, keys), `finance` (prices,
reports, audit, alerts)."""
