from pathlib import Path

import pytest

from proxy.config.routing import Router, Upstream
from proxy.config.settings import load_settings
from proxy.config.values import ConfigError

DEFAULT = Upstream("default", "https://api.openai.com/v1", "sk-default")
ARK = Upstream("byteplus", "https://ark.ap-southeast.bytepluses.com/api/v3", "ark-key",
               models=("seed-*", "bytedance-*"))
FLASH = Upstream("flash", "http://flash/v1", "f", models=("seed-1-6-flash-*",))
EXACT = Upstream("special", "http://special/v1", "s", models=("seed-1-6-250915",))


@pytest.mark.parametrize(("model", "upstream"), [
    ("gpt-4o-mini", "default"),
    ("seed-1-6-250615", "byteplus"),
    ("seed-1-6-flash-250715", "flash"),      # the longer pattern wins
    ("seed-1-6-250915", "special"),          # an exact name beats every pattern
    ("bytedance-seed-1-6", "byteplus"),
])
def test_routes(model, upstream):
    assert Router(DEFAULT, (ARK, FLASH, EXACT)).for_model(model).name == upstream


def test_named_falls_back_to_the_default():
    router = Router(DEFAULT, (ARK,))
    assert router.named("byteplus") is ARK and router.named("gone") is DEFAULT


def test_keys_stay_out_of_repr():
    assert "ark-key" not in repr(ARK)


def test_upstreams_from_the_config_file(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('[upstreams.byteplus]\nbase_url = "https://ark.example/api/v3/"\napi_key_env = "ARK_KEY"\n'
                      'models = ["seed-*"]\nread_timeout = 60\nrefuse_prefix_with_max_output_tokens = true\n')
    [upstream] = load_settings(config, environ={"ARK_KEY": "secret-ark"}).upstreams
    assert (upstream.base_url, upstream.api_key, upstream.models, upstream.read_timeout) == (
        "https://ark.example/api/v3", "secret-ark", ("seed-*",), 60.0)
    with pytest.raises(ConfigError, match="ARK_KEY is not set"):
        load_settings(config, environ={})
    config.write_text('[upstreams.x]\nbase_url = "ftp://x"\nmodels = ["a"]\n')
    with pytest.raises(ConfigError, match="upstreams.x.base_url"):
        load_settings(config, environ={})
