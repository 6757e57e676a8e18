"""Configuration: defaults, then a TOML file (`--config`), then the environment.

Every key of the environment table below may also appear in the TOML file, lower-cased
(`upstream_base_url = "..."`). Values are validated here, once, at start-up.
"""

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from billing.exports import DEFAULT_URLS, KINDS, STRIPE_VALUES, SinkConfig
from proxy.config.routing import DEFAULT, Upstream

ENVIRONMENT = {
    "DATABASE_URL": "database_url",
    "BILLING_PROXY_HOME": "home",
    "UPSTREAM_BASE_URL": "upstream_base_url",
    "UPSTREAM_API_KEY": "upstream_api_key",
    "BILLING_PROXY_ADMIN_TOKEN": "admin_token",
    "BILLING_PROXY_METRICS_TOKEN": "metrics_token",
    "BILLING_PROXY_FORWARD_HEADERS": "forward_headers",
    "BILLING_PROXY_ADMIN_FAILURES_PER_MINUTE": "admin_failures_per_minute",
    "PRICES_FILE": "prices_file",
    "BILLING_PROXY_MAX_BODY_BYTES": "max_body_bytes",
    "BILLING_PROXY_CONNECT_TIMEOUT": "upstream_connect_timeout",
    "BILLING_PROXY_READ_TIMEOUT": "upstream_read_timeout",
    "BILLING_PROXY_LOG_LEVEL": "log_level",
    "BILLING_PROXY_ALERT_WEBHOOK_URL": "alert_webhook_url",
    "BILLING_PROXY_EXPORT_WEBHOOK_URL": "export_webhook_url",
    "BILLING_PROXY_EXPORT_WEBHOOK_SECRET": "export_webhook_secret",
    "UPSTREAM_ADMIN_KEY": "upstream_admin_key",
    "BILLING_PROXY_RESERVATION_TTL": "reservation_ttl",
    "BILLING_PROXY_FIRST_BYTE_TIMEOUT": "upstream_first_byte_timeout",
    "BILLING_PROXY_IDLE_TIMEOUT": "upstream_idle_timeout",
    "BILLING_PROXY_ON_CLIENT_DISCONNECT": "on_client_disconnect",
    "BILLING_PROXY_DISCONNECT_DRAIN_TIMEOUT": "disconnect_drain_timeout",
    "BILLING_PROXY_OUTAGE_ADMISSION": "outage_admission",
    "BILLING_PROXY_SHUTDOWN_GRACE": "shutdown_grace",
    "BILLING_PROXY_CLIENT_TIMEOUT": "client_timeout",
    "BILLING_PROXY_LOG_FORMAT": "log_format",
    "BILLING_PROXY_ACCESS_LOG": "access_log",
    "BILLING_PROXY_BACKGROUND_POLL_SECONDS": "background_poll_seconds",
    "BILLING_PROXY_MAX_CONTEXT_TOKENS": "max_context_tokens",
    "BILLING_PROXY_MAX_IMAGE_TOKENS": "max_image_tokens",
    "BILLING_PROXY_DEFAULT_MAX_TOOL_CALLS": "default_max_tool_calls",
    "BILLING_PROXY_DEFAULT_SERVICE_TIER": "default_service_tier",
}


class ConfigError(ValueError):
    pass


UPSTREAM_FIELDS = {"base_url", "api_key", "api_key_env", "admin_api_key", "admin_api_key_env", "models",
                   "read_timeout", "refuse_prefix_with_max_output_tokens"}
EXPORT_FIELDS = {"type", "url", "secret", "secret_env", "api_key", "api_key_env", "source", "event_name", "value",
                 "customers", "batch_size"}


def _secret(spec: dict, names: tuple[str, str], environ: Mapping[str, str], where: str) -> str | None:
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
        secret = _secret(spec, ("secret", "secret_env"), environ, where) or \
            _secret(spec, ("api_key", "api_key_env"), environ, where)
        if kind == "stripe" and not secret:
            raise ConfigError(f"{where}: a Stripe sink needs api_key_env (a secret key, sk_...)")
        value = spec.get("value", "total_tokens")
        if value not in STRIPE_VALUES:
            raise ConfigError(f"{where}.value: must be one of {', '.join(STRIPE_VALUES)}")
        customers = spec.get("customers", {})
        if not isinstance(customers, dict) or not all(isinstance(v, str) for v in customers.values()):
            raise ConfigError(f"{where}.customers: must map tenant names to customer ids")
        sinks.append(SinkConfig(
            name=name, kind=kind, url=url, secret=secret, source=_text(f"{where}.source", spec.get("source", "billing-proxy")),
            event_name=_text(f"{where}.event_name", spec.get("event_name", "llm_usage")), value=value,
            customers=customers, batch_size=_positive_int(f"{where}.batch_size", spec.get("batch_size", 100))))
    return tuple(sinks)


def parse_upstreams(tables: Any, environ: Mapping[str, str], origin: str) -> tuple[Upstream, ...]:
    """`[upstreams.NAME]` tables: base_url, api_key or api_key_env, models, read_timeout,
    refuse_prefix_with_max_output_tokens."""
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
        admin_api_key = _secret(spec, ("admin_api_key", "admin_api_key_env"), environ, where)
        upstreams.append(Upstream(
            name=name, base_url=base_url.rstrip("/"), api_key=api_key, models=tuple(models),
            read_timeout=None if timeout is None else _positive_seconds(f"{where}.read_timeout", timeout),
            refuse_prefix_with_max_output_tokens=refuse, admin_api_key=admin_api_key))
    return tuple(upstreams)


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None  # None: the embedded PostgreSQL under `home`
    home: Path = Path("~/.billing-proxy").expanduser()
    upstream_base_url: str = "https://api.openai.com/v1"
    upstream_api_key: str | None = None
    admin_token: str | None = None
    metrics_token: str | None = None  # opens /metrics (as the admin token does); neither set: /metrics is off
    forward_headers: tuple[str, ...] = ()  # client headers sent upstream besides the built-in allow-list
    admin_failures_per_minute: int = 10  # wrong admin/metrics tokens an address may send before a 429
    prices_file: Path | None = None
    max_body_bytes: int = 32 * 1024 * 1024
    max_upstream_body_bytes: int = 64 * 1024 * 1024
    upstream_connect_timeout: float = 10.0
    upstream_read_timeout: float = 300.0  # default of the two below
    upstream_first_byte_timeout: float | None = None  # until the reply's headers; None: read timeout
    upstream_idle_timeout: float | None = None  # between chunks of a reply; None: read timeout
    on_client_disconnect: str = "finish"  # finish: read the upstream to its end and bill it; cancel
    disconnect_drain_timeout: float = 120.0  # finish: at most this long after the client left
    outage_admission: str = "serve"  # database down: serve (last known quota state) | refuse (503)
    shutdown_grace: float = 30.0  # SIGTERM: in-flight calls get this long to finish
    client_timeout: float = 30.0  # a client must send its request (headers and body) within this
    log_format: str = "json"  # json | text
    access_log: str = "on"  # on: one line per call (logger billing_proxy.access) | off
    sync_interval: float = 1.0  # keys and prices mirror; a revoked key stops within this
    ledger_batch_size: int = 500
    log_level: str = "INFO"
    alert_webhook_url: str | None = None  # threshold alerts are POSTed here
    export_webhook_url: str | None = None  # every ledger entry, as CloudEvents (the sink named "webhook")
    export_webhook_secret: str | None = None  # its HMAC key (Standard Webhooks signature)
    upstream_admin_key: str | None = None  # the default upstream's admin key: its Usage and Costs API
    reservation_ttl: float = 900.0  # a quota reservation of a call that never settles expires after this
    background_poll_seconds: float = 30.0  # the longest pause between two polls of a background response
    default_max_output_tokens: int = 16384  # worst-case output of a model with no cap in its price
    max_context_tokens: int = 1_050_000  # worst-case input of one model turn (the largest context window served)
    max_image_tokens: int = 50_000  # worst case of one input image (gpt-4o-mini bills up to 48,169)
    default_max_tool_calls: int = 10  # built-in tool calls estimated when a request sets no max_tool_calls
    default_service_tier: str | None = None  # the tier the upstream account serves requests naming none in
    upstreams: tuple[Upstream, ...] = field(default=())  # besides the default one, from [upstreams.NAME]
    exports: tuple[SinkConfig, ...] = field(default=())  # from [exports.NAME]

    def export_sinks(self) -> tuple[SinkConfig, ...]:
        """The configured sinks, with the environment's webhook as the sink named "webhook"."""
        if not self.export_webhook_url:
            return self.exports
        webhook = SinkConfig(name="webhook", kind="webhook", url=self.export_webhook_url,
                             secret=self.export_webhook_secret)
        return (webhook, *(s for s in self.exports if s.name != "webhook"))

    def first_byte_timeout(self, upstream: Upstream) -> float:
        return upstream.read_timeout or self.upstream_first_byte_timeout or self.upstream_read_timeout

    def idle_timeout(self, upstream: Upstream) -> float:
        return upstream.read_timeout or self.upstream_idle_timeout or self.upstream_read_timeout

    def __repr__(self) -> str:  # never print credentials
        hidden = {"upstream_api_key", "admin_token", "metrics_token", "database_url", "export_webhook_secret",
                  "upstream_admin_key"}
        shown = ", ".join(f"{f.name}={'***' if f.name in hidden and getattr(self, f.name) else getattr(self, f.name)!r}"
                          for f in fields(self))
        return f"Settings({shown})"


def _positive_int(name: str, value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        result = int(value)
    except (TypeError, ValueError):
        result = 0
    if result <= 0:
        raise ConfigError(f"{name} must be a positive integer, not {value!r}")
    return result


def _positive_seconds(name: str, value: Any) -> float:
    """A duration in seconds (never money)."""
    try:
        if isinstance(value, bool):
            raise ValueError
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
    return seconds


def _path(name: str, value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a path")
    return Path(value).expanduser()


def _choice(*allowed: str):
    def parse(name: str, value: Any) -> str:
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        return value
    return parse


MIN_TOKEN_CHARS = 24


def _token(name: str, value: Any) -> str:
    """A bearer token the operator chose: long enough not to be guessed, and printable ASCII
    (an HTTP header carries nothing else)."""
    if not isinstance(value, str) or len(value) < MIN_TOKEN_CHARS or not (value.isascii() and value.isprintable()) \
            or " " in value:
        raise ConfigError(f"{name} must be at least {MIN_TOKEN_CHARS} printable ASCII characters without spaces; "
                          "make one with `openssl rand -hex 24`")
    return value


def _header_names(name: str, value: Any) -> tuple[str, ...]:
    """Header names, comma-separated or a TOML array; `prefix*` allows every name it starts."""
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{name} must be header names, comma-separated (a trailing * allows a prefix)")
    cleaned = tuple(n.strip().lower() for n in names if n.strip())
    if any(not n.rstrip("*") or "*" in n.rstrip("*") or n.rstrip("*") in ("authorization", "cookie", "host")
           for n in cleaned):
        raise ConfigError(f"{name}: {value!r} is not a list of header names the proxy may forward")
    return cleaned


def _url(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must start with http:// or https://")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string")
    return value


_PARSERS = {
    "home": _path,
    "prices_file": _path,
    "max_body_bytes": _positive_int,
    "max_upstream_body_bytes": _positive_int,
    "ledger_batch_size": _positive_int,
    "upstream_connect_timeout": _positive_seconds,
    "upstream_read_timeout": _positive_seconds,
    "sync_interval": _positive_seconds,
    "reservation_ttl": _positive_seconds,
    "background_poll_seconds": _positive_seconds,
    "upstream_first_byte_timeout": _positive_seconds,
    "upstream_idle_timeout": _positive_seconds,
    "disconnect_drain_timeout": _positive_seconds,
    "shutdown_grace": _positive_seconds,
    "client_timeout": _positive_seconds,
    "on_client_disconnect": _choice("finish", "cancel"),
    "outage_admission": _choice("serve", "refuse"),
    "log_format": _choice("json", "text"),
    "access_log": _choice("on", "off"),
    "default_max_output_tokens": _positive_int,
    "max_context_tokens": _positive_int,
    "max_image_tokens": _positive_int,
    "default_max_tool_calls": _positive_int,
    "admin_token": _token,
    "export_webhook_url": _url,
    "metrics_token": _token,
    "forward_headers": _header_names,
    "admin_failures_per_minute": _positive_int,
}


def load_settings(config_file: Path | None = None, environ: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{config_file}: {exc}") from None
        known = {f.name for f in fields(Settings)} - {"upstreams", "exports"}
        upstream_tables = data.pop("upstreams", {})
        export_tables = data.pop("exports", {})
        for key, value in data.items():
            if key not in known:
                raise ConfigError(f"{config_file}: unknown setting {key!r}")
            values[key] = value
        upstreams = parse_upstreams(upstream_tables, environ, str(config_file))
        exports = parse_exports(export_tables, environ, str(config_file))
    for variable, key in ENVIRONMENT.items():
        if environ.get(variable):
            values[key] = environ[variable]
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = replace(Settings(), **{k: _PARSERS.get(k, _text)(k, v) for k, v in values.items()})
    if config_file is not None:
        settings = replace(settings, upstreams=upstreams, exports=exports)
    if not settings.upstream_base_url.startswith(("http://", "https://")):
        raise ConfigError("UPSTREAM_BASE_URL must start with http:// or https://")
    return replace(settings, upstream_base_url=settings.upstream_base_url.rstrip("/"))
