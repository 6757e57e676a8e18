"""The TOML file's tables: `[upstreams.NAME]` (more upstreams, each serving the models it
names) and `[exports.NAME]` (billing systems that receive every ledger entry). A secret is
given inline or, better, named by an environment variable (`api_key_env`)."""

from typing import Any, Mapping

from billing.exports import DEFAULT_URLS, KINDS, STRIPE_VALUES, SinkConfig
from proxy.config.routing import DEFAULT, Upstream
from proxy.config.values import ConfigError, positive_int, positive_seconds, price_uplift, text_value


UPSTREAM_FIELDS = {"base_url", "api_key", "api_key_env", "admin_api_key", "admin_api_key_env", "models",
                   "read_timeout", "refuse_prefix_with_max_output_tokens", "price_uplift"}
EXPORT_FIELDS = {"type", "url", "secret", "secret_env", "api_key", "api_key_env", "source", "event_name", "value",
                 "customers", "batch_size"}


def credential(spec: dict, names: tuple[str, str], environ: Mapping[str, str], where: str) -> str | None:
    """A credential given inline (`api_key`) or, better, named by an environment variable (`api_key_env`)."""
    inline, variable = names
    if variable in spec:
        value = environ.get(str(spec[variable]))
        if not value:
            raise ConfigError(f"{where}.{variable}: {spec[variable]} is not set")
        return value
    value = spec.get(inline)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}.{inline}: must be a string")
    return value


def parse_exports(tables: Any, environ: Mapping[str, str], origin: str) -> tuple[SinkConfig, ...]:
    """`[exports.NAME]` tables: type (webhook | stripe | openmeter), url, secret(_env) or
    api_key(_env), and for Stripe event_name, value and a `customers` table."""
    if not isinstance(tables, dict):
        raise ConfigError(f"{origin}: `exports` must be a table of sinks")
    sinks = []
    for name, spec in tables.items():
        where = f"{origin}: exports.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: must be a table")
        unknown = set(spec) - EXPORT_FIELDS
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown field")
        kind = spec.get("type")
        if kind not in KINDS:
            raise ConfigError(f"{where}.type: must be one of {', '.join(KINDS)}")
        url = spec.get("url", DEFAULT_URLS.get(kind))
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.url: must start with http:// or https://")
        secret = credential(spec, ("secret", "secret_env"), environ, where) or \
            credential(spec, ("api_key", "api_key_env"), environ, where)
        if kind == "stripe" and not secret:
            raise ConfigError(f"{where}: a Stripe sink needs api_key_env (a secret key, sk_...)")
        value = spec.get("value", "total_tokens")
        if value not in STRIPE_VALUES:
            raise ConfigError(f"{where}.value: must be one of {', '.join(STRIPE_VALUES)}")
        customers = spec.get("customers", {})
        if not isinstance(customers, dict) or not all(isinstance(v, str) for v in customers.values()):
            raise ConfigError(f"{where}.customers: must map tenant names to customer ids")
        sinks.append(SinkConfig(
            name=name, kind=kind, url=url, secret=secret, source=text_value(f"{where}.source", spec.get("source", "billing-proxy")),
            event_name=text_value(f"{where}.event_name", spec.get("event_name", "llm_usage")), value=value,
            customers=customers, batch_size=positive_int(f"{where}.batch_size", spec.get("batch_size", 100))))
    return tuple(sinks)


def parse_upstreams(tables: Any, environ: Mapping[str, str], origin: str) -> tuple[Upstream, ...]:
    """`[upstreams.NAME]` tables: base_url, api_key or api_key_env, models, read_timeout,
    refuse_prefix_with_max_output_tokens, price_uplift."""
    if not isinstance(tables, dict):
        raise ConfigError(f"{origin}: `upstreams` must be a table of upstreams")
    upstreams = []
    for name, spec in tables.items():
        where = f"{origin}: upstreams.{name}"
        if name == DEFAULT or not isinstance(spec, dict):
            raise ConfigError(f"{where}: must be a table, and not named {DEFAULT!r}")
        unknown = set(spec) - UPSTREAM_FIELDS
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown field")
        base_url = spec.get("base_url")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.base_url: must start with http:// or https://")
        models = spec.get("models")
        if not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models):
            raise ConfigError(f"{where}.models: must be a non-empty array of names or patterns")
        api_key = spec.get("api_key")
        if "api_key_env" in spec:
            api_key = environ.get(str(spec["api_key_env"]))
            if not api_key:
                raise ConfigError(f"{where}.api_key_env: {spec['api_key_env']} is not set")
        refuse = spec.get("refuse_prefix_with_max_output_tokens", True)
        if not isinstance(refuse, bool):
            raise ConfigError(f"{where}.refuse_prefix_with_max_output_tokens: must be true or false")
        timeout = spec.get("read_timeout")
        admin_api_key = credential(spec, ("admin_api_key", "admin_api_key_env"), environ, where)
        upstreams.append(Upstream(
            name=name, base_url=base_url.rstrip("/"), api_key=api_key, models=tuple(models),
            read_timeout=None if timeout is None else positive_seconds(f"{where}.read_timeout", timeout),
            refuse_prefix_with_max_output_tokens=refuse, admin_api_key=admin_api_key,
            price_uplift=price_uplift(f"{where}.price_uplift", spec.get("price_uplift", "0"))))
    return tuple(upstreams)
