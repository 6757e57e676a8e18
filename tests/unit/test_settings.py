from decimal import Decimal
from pathlib import Path

import pytest

from proxy.config.settings import load_settings
from proxy.config.values import ConfigError


def test_defaults_and_environment():
    settings = load_settings(environ={"UPSTREAM_BASE_URL": "http://up:9000/v1/", "UPSTREAM_API_KEY": "sk-very-secret",
                                      "BILLING_PROXY_HOME": "/tmp/bp"})
    assert settings.upstream_base_url == "http://up:9000/v1"
    assert settings.home == Path("/tmp/bp") and settings.database_url is None
    assert "sk-very-secret" not in repr(settings)


def test_config_file_then_environment_wins(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('upstream_base_url = "http://file/v1"\nmax_body_bytes = 1000\n')
    settings = load_settings(config, environ={"UPSTREAM_BASE_URL": "http://env/v1"})
    assert settings.upstream_base_url == "http://env/v1" and settings.max_body_bytes == 1000


def test_the_models_counted_in_o200k_tokens():
    assert "gpt-5*" in load_settings(environ={}).o200k_models
    assert load_settings(environ={"BILLING_PROXY_O200K_MODELS": "none"}).o200k_models == ()
    assert load_settings(environ={"BILLING_PROXY_O200K_MODELS": " gpt-5*, my-gpt "}).o200k_models == ("gpt-5*", "my-gpt")


@pytest.mark.parametrize(("text", "message"), [
    ("o200k_models = 5\n", "o200k_models must be model names"),
    ('o200k_models = ["gpt 5"]\n', "not a list of model names"),
    ("colour = 1\n", "unknown setting 'colour'"),
    ("max_body_bytes = -5\n", "max_body_bytes must be a positive integer"),
    ('upstream_base_url = "ftp://x"\n', "must start with http"),
    ("upstream_read_timeout = 'soon'\n", "upstream_read_timeout"),
])
def test_invalid_config_is_refused(tmp_path, text, message):
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ={})


def test_a_price_uplift_is_a_fraction_written_exactly():
    from proxy.config.values import price_uplift
    assert price_uplift("x", "0.10") == Decimal("0.10") and price_uplift("x", 0) == 0
    for bad in (0.1, "1.5", "-0.1", "ten", True, None, "NaN"):
        with pytest.raises(ConfigError, match="x must"):
            price_uplift("x", bad)


def test_an_upstream_table_names_its_uplift():
    from proxy.config.tables import parse_upstreams
    (eu,) = parse_upstreams({"openai-eu": {"base_url": "https://eu.api.openai.com/v1", "models": ["gpt-6*"],
                                           "price_uplift": "0.10"}}, {}, "config.toml")
    assert eu.price_uplift == Decimal("0.10")
    with pytest.raises(ConfigError, match="upstreams.openai-eu.price_uplift must"):
        parse_upstreams({"openai-eu": {"base_url": "https://eu.api.openai.com/v1", "models": ["gpt-6*"],
                                       "price_uplift": 0.1}}, {}, "config.toml")


def test_how_end_users_and_tags_are_kept():
    assert (load_settings(environ={}).user_hash_key, load_settings(environ={}).kept_tags) == (None, None)
    settings = load_settings(environ={"BILLING_PROXY_USER_HASH_KEY": "k" * 32,
                                      "BILLING_PROXY_KEPT_TAGS": " project, env "})
    assert (settings.user_hash_key, settings.kept_tags) == ("k" * 32, ("project", "env"))
    assert "k" * 32 not in repr(settings)  # a secret is never printed
    assert load_settings(environ={"BILLING_PROXY_KEPT_TAGS": "none"}).kept_tags == ()
    for bad in ({"BILLING_PROXY_USER_HASH_KEY": "short"}, {"BILLING_PROXY_KEPT_TAGS": "a" * 65}):
        with pytest.raises(ConfigError):
            load_settings(environ=bad)


SMTP = {"BILLING_PROXY_SMTP_HOST": "mail.example.test", "BILLING_PROXY_SMTP_FROM": "alerts@example.test"}


def test_alert_channels_from_the_environment():
    settings = load_settings(environ={
        **SMTP, "BILLING_PROXY_ALERT_EMAIL_TO": "ops@example.test, finance@example.test",
        "BILLING_PROXY_SMTP_USERNAME": "alerts", "BILLING_PROXY_SMTP_PASSWORD": "smtp-very-secret",
        "BILLING_PROXY_ALERT_SLACK_URL": "https://hooks.slack.com/services/T/B/slack-very-secret",
        "BILLING_PROXY_ALERT_WEBHOOK_SECRET": "whsec_c2VjcmV0", "BILLING_PROXY_ALERT_LOW_BALANCE_USD": "5.00",
        "BILLING_PROXY_SMTP_PORT": "2525"})
    assert settings.alert_email_to == ("ops@example.test", "finance@example.test")
    assert (settings.smtp_port, settings.smtp_security, settings.alert_forecast) == (2525, "starttls", "on")
    assert settings.alert_low_balance_usd == Decimal("5.00")
    shown = repr(settings)
    assert "smtp-very-secret" not in shown and "slack-very-secret" not in shown and "c2VjcmV0" not in shown


@pytest.mark.parametrize(("environ", "message"), [
    ({"BILLING_PROXY_ALERT_EMAIL_TO": "ops@example.test"}, "needs BILLING_PROXY_SMTP_HOST"),
    ({"BILLING_PROXY_SMTP_HOST": "mail.example.test"}, "needs BILLING_PROXY_SMTP_FROM"),
    ({**SMTP, "BILLING_PROXY_SMTP_SECURITY": "none", "BILLING_PROXY_SMTP_PASSWORD": "pw"}, "sends in the clear"),
    ({**SMTP, "BILLING_PROXY_SMTP_SECURITY": "ssl3"}, "smtp_security must be one of"),
    ({**SMTP, "BILLING_PROXY_SMTP_PORT": "70000"}, "TCP port"),
    ({**SMTP, "BILLING_PROXY_ALERT_EMAIL_TO": "not an address"}, "not an email address"),
    ({"BILLING_PROXY_ALERT_SLACK_URL": "hooks.slack.com/x"}, "must start with http"),
    ({"BILLING_PROXY_ALERT_LOW_BALANCE_USD": "-1"}, "0 or more"),
    ({"BILLING_PROXY_ALERT_FORECAST": "maybe"}, "alert_forecast must be one of"),
])
def test_invalid_alert_settings_are_refused(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)
