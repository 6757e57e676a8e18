"""Configuration: defaults, then a TOML file (`--config`), then the environment.

Every key of the environment table below may also appear in the TOML file, lower-cased
(`upstream_base_url = "..."`). Values are validated here, once, at start-up.
"""

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

from billing.exports import SinkConfig
from billing.tokenizer import O200K_MODELS
from proxy.config.routing import Upstream
from proxy.config.tables import parse_exports, parse_upstreams
from proxy.config.values import (ConfigError, choice, email_address, email_addresses, header_names, model_patterns, path_value,
                                 port_value, positive_int, positive_seconds, price_uplift, tag_names, text_value,
                                 token_value, url_value, usd_amount)

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
    "BILLING_PROXY_ALERT_WEBHOOK_SECRET": "alert_webhook_secret",
    "BILLING_PROXY_ALERT_SLACK_URL": "alert_slack_url",
    "BILLING_PROXY_ALERT_EMAIL_TO": "alert_email_to",
    "BILLING_PROXY_ALERT_LOW_BALANCE_USD": "alert_low_balance_usd",
    "BILLING_PROXY_ALERT_FORECAST": "alert_forecast",
    "BILLING_PROXY_SMTP_HOST": "smtp_host",
    "BILLING_PROXY_SMTP_PORT": "smtp_port",
    "BILLING_PROXY_SMTP_USERNAME": "smtp_username",
    "BILLING_PROXY_SMTP_PASSWORD": "smtp_password",
    "BILLING_PROXY_SMTP_FROM": "smtp_from",
    "BILLING_PROXY_SMTP_SECURITY": "smtp_security",
    "BILLING_PROXY_SMTP_CA_FILE": "smtp_ca_file",
    "BILLING_PROXY_EXPORT_WEBHOOK_URL": "export_webhook_url",
    "BILLING_PROXY_EXPORT_WEBHOOK_SECRET": "export_webhook_secret",
    "UPSTREAM_ADMIN_KEY": "upstream_admin_key",
    "UPSTREAM_PRICE_UPLIFT": "upstream_price_uplift",
    "BILLING_PROXY_RESERVATION_TTL": "reservation_ttl",
    "BILLING_PROXY_FIT_FLOOR_TOKENS": "fit_floor_tokens",
    "BILLING_PROXY_FIT_SHARES": "fit_shares",
    "BILLING_PROXY_O200K_MODELS": "o200k_models",
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
    "BILLING_PROXY_USER_HASH_KEY": "user_hash_key",
    "BILLING_PROXY_KEPT_TAGS": "kept_tags",
}


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
    alert_webhook_secret: str | None = None  # signs them (Standard Webhooks HMAC-SHA256)
    alert_slack_url: str | None = None  # the operator's Slack incoming webhook
    alert_email_to: tuple[str, ...] = ()  # the operator's alert recipients (needs smtp_host)
    alert_low_balance_usd: Decimal | None = None  # a prepaid balance under this alerts; None: never
    alert_forecast: str = "on"  # on: alert when the month-end forecast passes a monthly budget | off
    smtp_host: str | None = None  # where alert emails are sent from; None: no email
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None  # the From address
    smtp_security: str = "starttls"  # starttls (required) | tls (implicit, port 465) | none (no credentials)
    smtp_ca_file: Path | None = None  # trust this CA for the SMTP server besides the system's
    export_webhook_url: str | None = None  # every ledger entry, as CloudEvents (the sink named "webhook")
    export_webhook_secret: str | None = None  # its HMAC key (Standard Webhooks signature)
    upstream_admin_key: str | None = None  # the default upstream's admin key: its Usage and Costs API
    upstream_price_uplift: Decimal = Decimal(0)  # what the default upstream adds on list prices (0.10)
    reservation_ttl: float = 900.0  # a quota reservation of a call that never settles expires after this
    fit_floor_tokens: int = 256  # a call is fitted to what a limit has left, but never below this output cap
    fit_shares: int = 2  # a fitted call gets at most 1/(this x (1 + calls in flight)) of what its limit has left
    o200k_models: tuple[str, ...] = O200K_MODELS  # models whose input is counted in o200k_base tokens, not bytes
    background_poll_seconds: float = 30.0  # the longest pause between two polls of a background response
    default_max_output_tokens: int = 16384  # worst-case output of a model with no cap in its price
    max_context_tokens: int = 1_050_000  # worst-case input of one model turn (the largest context window served)
    max_image_tokens: int = 50_000  # worst case of one input image (gpt-4o-mini bills up to 48,169)
    default_max_tool_calls: int = 10  # built-in tool calls estimated when a request sets no max_tool_calls
    default_service_tier: str | None = None  # the tier the upstream account serves requests naming none in
    user_hash_key: str | None = None  # end users kept as HMAC-SHA256 under this key
    kept_tags: tuple[str, ...] | None = None  # the tag names kept on entries; None: all
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
                  "upstream_admin_key", "user_hash_key", "alert_webhook_secret", "alert_slack_url", "smtp_password"}
        shown = ", ".join(f"{f.name}={'***' if f.name in hidden and getattr(self, f.name) else getattr(self, f.name)!r}"
                          for f in fields(self))
        return f"Settings({shown})"


_PARSERS = {
    "home": path_value,
    "prices_file": path_value,
    "max_body_bytes": positive_int,
    "max_upstream_body_bytes": positive_int,
    "ledger_batch_size": positive_int,
    "upstream_connect_timeout": positive_seconds,
    "upstream_read_timeout": positive_seconds,
    "sync_interval": positive_seconds,
    "reservation_ttl": positive_seconds,
    "fit_floor_tokens": positive_int,
    "fit_shares": positive_int,
    "background_poll_seconds": positive_seconds,
    "upstream_first_byte_timeout": positive_seconds,
    "upstream_idle_timeout": positive_seconds,
    "disconnect_drain_timeout": positive_seconds,
    "shutdown_grace": positive_seconds,
    "client_timeout": positive_seconds,
    "on_client_disconnect": choice("finish", "cancel"),
    "outage_admission": choice("serve", "refuse"),
    "log_format": choice("json", "text"),
    "access_log": choice("on", "off"),
    "default_max_output_tokens": positive_int,
    "max_context_tokens": positive_int,
    "max_image_tokens": positive_int,
    "default_max_tool_calls": positive_int,
    "admin_token": token_value,
    "user_hash_key": token_value,
    "kept_tags": tag_names,
    "export_webhook_url": url_value,
    "metrics_token": token_value,
    "forward_headers": header_names,
    "o200k_models": model_patterns,
    "admin_failures_per_minute": positive_int,
    "upstream_price_uplift": price_uplift,
    "alert_webhook_url": url_value,
    "alert_slack_url": url_value,
    "alert_email_to": email_addresses,
    "alert_low_balance_usd": usd_amount,
    "alert_forecast": choice("on", "off"),
    "smtp_port": port_value,
    "smtp_from": email_address,
    "smtp_security": choice("starttls", "tls", "none"),
    "smtp_ca_file": path_value,
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
    settings = replace(Settings(), **{k: _PARSERS.get(k, text_value)(k, v) for k, v in values.items()})
    if config_file is not None:
        settings = replace(settings, upstreams=upstreams, exports=exports)
    if not settings.upstream_base_url.startswith(("http://", "https://")):
        raise ConfigError("UPSTREAM_BASE_URL must start with http:// or https://")
    check_smtp(settings)
    return replace(settings, upstream_base_url=settings.upstream_base_url.rstrip("/"))


def check_smtp(settings: Settings) -> None:
    """Email needs a server and a sender; credentials never go over an unencrypted connection."""
    if settings.alert_email_to and not settings.smtp_host:
        raise ConfigError("BILLING_PROXY_ALERT_EMAIL_TO needs BILLING_PROXY_SMTP_HOST")
    if settings.smtp_host and not settings.smtp_from:
        raise ConfigError("BILLING_PROXY_SMTP_HOST needs BILLING_PROXY_SMTP_FROM (the sender's address)")
    if settings.smtp_security == "none" and (settings.smtp_username or settings.smtp_password):
        raise ConfigError("BILLING_PROXY_SMTP_SECURITY=none sends in the clear: it takes no username or password "
                          "(use starttls or tls)")
