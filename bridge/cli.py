"""The `bridge` command. Commands are thin: they read settings, build the parts and hand over."""
from __future__ import annotations

import logging
import math
import signal
import sys
import threading

import click

from bridge.settings import Settings, SettingsError

log = logging.getLogger("bridge.cli")


class CliError(click.ClickException):
    """A user-facing failure; click prints it and exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise CliError(str(exc))


def load_rules(path: str):
    from bridge.rules import ConfigError, load_config
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CliError(str(exc), exc.exit_code)
    except OSError as exc:
        raise CliError(f"{path}: cannot read the rules file ({exc.strerror})")


@click.group()
def main():
    """productsup-bridge: webhooks in, debounced Productsup process calls out."""
    from bridge.app import configure_logging
    configure_logging()


def open_store(settings: Settings):
    """The store, with its tables; a bad DATABASE_URL is one clear line, not a traceback."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from bridge.store import Store
    try:
        store = Store.from_url(settings.database_url)
        store.create_schema()
    except (SQLAlchemyError, ArgumentError, ImportError, ValueError) as exc:
        raise CliError(f"cannot open the database DATABASE_URL={settings.redacted_database_url}: "
                       f"{_first_line(exc)}")
    return store


def _first_line(exc: Exception) -> str:
    detail = getattr(exc, "orig", None) or exc
    return f"{type(detail).__name__}: {str(detail).strip().splitlines()[0] if str(detail).strip() else ''}"


def finite(ctx, param, value):
    if value is not None and not math.isfinite(value):
        raise click.BadParameter("must be a finite number")
    return value


@main.command()
@click.option("--rules", "rules_path", help="Rules file (default: $BRIDGE_RULES or config/rules.yaml).")
def check(rules_path):
    """Validate the rules file; exit non-zero on errors."""
    path = rules_path or load_settings().rules_path
    config = load_rules(path)
    click.echo(f"{path}: OK ({len(config.sources)} sources, {len(config.rules)} rules)")


@main.command()
@click.argument("source")
@click.option("--body", "body_file", type=click.File("rb"), required=True, help="File with the raw body.")
@click.option("-H", "--header", "headers", multiple=True, help="A header, 'Name: value'. Repeatable.")
@click.option("-q", "--query", "query", multiple=True, help="A query parameter, 'name=value'. Repeatable.")
@click.option("--rules", "rules_path", help="Rules file (default: $BRIDGE_RULES or config/rules.yaml).")
def explain(source, body_file, headers, query, rules_path):
    """Dry-run one request: verification, matching rules and intents. Stores and calls nothing."""
    from bridge.explain import explain_request
    config = load_rules(rules_path or load_settings().rules_path)
    try:
        lines, ok = explain_request(config, source, body_file.read(), headers, query)
    except ValueError as exc:
        raise CliError(str(exc))
    click.echo("\n".join(lines))
    sys.exit(0 if ok else 1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default: $BRIDGE_SIM_PORT or 8701.")
@click.option("--rate-limit", "rate_limit", type=click.FloatRange(min=0), default=300.0, show_default=True,
              callback=finite, help="Seconds between accepted process calls per site.")
@click.option("--run-seconds", type=click.FloatRange(min=0), default=60.0, show_default=True, callback=finite,
              help="How long each run takes.")
@click.option("--token", default=None, help="Accept only this accountId:token (default: any of that form).")
def sim(host, port, rate_limit, run_seconds, token):
    """A local stand-in for the Productsup Platform API, with its queue and rate rules."""
    from bridge.simulator import run_simulator
    port = port or load_settings().sim_port
    click.echo(f"simulator on http://{host}:{port} (rate limit {rate_limit}s, runs {run_seconds}s)")
    run_simulator(host, port, rate_limit_seconds=rate_limit, run_seconds=run_seconds, auth_token=token)


@main.command()
def worker():
    """Run the dispatcher alone (the Procfile's worker)."""
    from bridge.runtime import build_dispatcher
    settings = load_settings()
    dispatcher = build_dispatcher(settings, load_rules(settings.rules_path), open_store(settings))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    dispatcher.run_forever(stop, settings.tick_seconds)


@main.command()
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default: $PORT or 8000.")
@click.option("--host", default="0.0.0.0", show_default=True,
              help="Address to listen on; 127.0.0.1 keeps it to this machine.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Web worker processes (each also runs a dispatcher; they share the database safely).")
def serve(port, host, workers):
    """Web and dispatcher in one process group, for one machine."""
    from bridge.runtime import serve as run_serve
    settings = load_settings()
    load_rules(settings.rules_path)  # fail here, readably, rather than in a gunicorn worker
    open_store(settings).dispose()
    run_serve(settings, host, port or settings.port, workers)
