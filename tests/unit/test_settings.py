"""Settings from the environment: defaults, the simulator switch, validation, no token in repr."""
import pytest

from bridge.settings import REAL_API_URL, Settings, SettingsError


def test_embedded_defaults_use_sqlite_and_the_local_simulator():
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///bridge.db"
    assert settings.rules_path == "config/rules.yaml"
    assert settings.simulate and settings.embed_simulator
    assert settings.api_url == "http://127.0.0.1:8701"


def test_credentials_switch_to_the_real_api():
    settings = Settings.from_env({"PRODUCTSUP_AUTH_TOKEN": "1234:abcd"})
    assert not settings.simulate and settings.api_url == REAL_API_URL and settings.auth_token == "1234:abcd"


def test_an_api_url_without_credentials_means_an_external_simulator():
    settings = Settings.from_env({"PRODUCTSUP_API_URL": "http://127.0.0.1:9999/"})
    assert settings.simulate and not settings.embed_simulator and settings.api_url == "http://127.0.0.1:9999"


@pytest.mark.parametrize("env", [
    {"PRODUCTSUP_AUTH_TOKEN": "abcd"}, {"PRODUCTSUP_AUTH_TOKEN": ":abcd"}, {"PRODUCTSUP_AUTH_TOKEN": "12:"},
    {"PORT": "0"}, {"PORT": "70000"}, {"PORT": "eighty"}, {"BRIDGE_SIM_PORT": "-1"},
    {"BRIDGE_TICK_SECONDS": "0"}, {"BRIDGE_POLL_SECONDS": "soon"},
])
def test_bad_values_are_refused(env):
    with pytest.raises(SettingsError):
        Settings.from_env(env)


def test_repr_never_shows_the_token_or_the_database_password():
    settings = Settings.from_env({"PRODUCTSUP_AUTH_TOKEN": "1234:very-secret",
                                  "DATABASE_URL": "postgres://user:pw-secret@db.example:5432/bridge"})
    assert "very-secret" not in repr(settings) and "pw-secret" not in repr(settings)
