"""Configuration: settings from defaults, a TOML file and the environment, and the upstreams
they name."""
