"""Settings from the environment (12-factor), read once and validated."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

REAL_API_URL = "https://platform-api.productsup.io"
SIMULATOR_TOKEN = "0:simulator"
DEFAULT_SIM_PORT = 8701


class SettingsError(ValueError):
    exit_code = 2


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///bridge.db"
    rules_path: str = "config/rules.yaml"
    api_url: str = REAL_API_URL
    auth_token: str = SIMULATOR_TOKEN
    simulate: bool = True            # no credentials: call the local simulator
    embed_simulator: bool = True     # ... and start it ourselves (no PRODUCTSUP_API_URL given)
    sim_port: int = DEFAULT_SIM_PORT
    port: int = 8000
    tick_seconds: float = 1.0        # how often the dispatcher looks for due work at most
    poll_seconds: float = 30.0       # how often one process's status is read
    poll_deadline: float = 6 * 3600  # an unknown process id answers "queued" forever: stop after this
    trusted_proxies: int = 0         # X-Forwarded-For hops to trust (1 on Heroku)
    body_timeout: float = 10.0       # a request body must arrive within this many seconds

    def __repr__(self) -> str:  # the token must never reach a log line
        return (f"Settings(database_url={_redact_url(self.database_url)!r}, rules_path={self.rules_path!r}, "
                f"api_url={self.api_url!r}, simulate={self.simulate})")

    @property
    def redacted_database_url(self) -> str:
        return _redact_url(self.database_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        token = env.get("PRODUCTSUP_AUTH_TOKEN", "").strip()
        if token and (":" not in token or token.startswith(":") or token.endswith(":")):
            raise SettingsError("PRODUCTSUP_AUTH_TOKEN must look like accountId:token")
        sim_port = _int(env, "BRIDGE_SIM_PORT", DEFAULT_SIM_PORT)
        api_url = env.get("PRODUCTSUP_API_URL", "").strip().rstrip("/")
        simulate = not token
        return cls(
            database_url=env.get("DATABASE_URL", "").strip() or "sqlite:///bridge.db",
            rules_path=env.get("BRIDGE_RULES", "").strip() or "config/rules.yaml",
            api_url=api_url or (f"http://127.0.0.1:{sim_port}" if simulate else REAL_API_URL),
            auth_token=token or SIMULATOR_TOKEN,
            simulate=simulate,
            embed_simulator=simulate and not api_url,
            sim_port=sim_port,
            port=_int(env, "PORT", 8000),
            tick_seconds=_float(env, "BRIDGE_TICK_SECONDS", 1.0),
            poll_seconds=_float(env, "BRIDGE_POLL_SECONDS", 30.0),
            trusted_proxies=_count(env, "BRIDGE_TRUSTED_PROXIES", 0),
            body_timeout=_float(env, "BRIDGE_BODY_TIMEOUT", 10.0),
        )


def _int(env, name, default) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SettingsError(f"{name} must be a port number, got {value!r}")
    return int(value)


def _count(env, name, default) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) > 10:
        raise SettingsError(f"{name} must be a number of proxy hops from 0 to 10, got {value!r}")
    return int(value)


def _float(env, name, default) -> float:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not 0 < number < 86400:
        raise SettingsError(f"{name} must be a number of seconds, got {value!r}")
    return number


def _redact_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
