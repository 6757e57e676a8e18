"""The operator's surface: the admin API, its models and OpenAPI document, the dashboard
and statements."""
