"""A throwaway PostgreSQL server for the store's tests, and a `database_url` for either database."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy

from tests.helpers import free_port

PG_BINDIRS = [os.environ.get("PG_BINDIR", ""), "/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin"]


def _pg_bindir() -> Path | None:
    for directory in filter(None, PG_BINDIRS):
        if all((Path(directory) / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(directory)
    return None


def _as_postgres_user(root: Path) -> list[str]:
    """initdb refuses root: run the cluster as the `postgres` system user, owning its temp dir."""
    if os.geteuid() != 0:
        return []
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
        user = pwd.getpwnam("postgres")
    os.chown(root, user.pw_uid, user.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


@pytest.fixture(scope="session")
def postgresql_server():
    """Start a cluster on a free 127.0.0.1 port; yield the URL of its database `bridge`."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip(f"PostgreSQL binaries (initdb, pg_ctl, postgres) not found in {PG_BINDIRS}")
    # Not under pytest's basetemp: /tmp/pytest-of-root is 0700, which the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="bridge-pg-"))
    data, port = root / "data", free_port()
    run = _as_postgres_user(root)

    def pg(*args):
        subprocess.run([*run, *map(str, args)], cwd=root, check=True, capture_output=True, timeout=60)

    try:
        pg(bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C",
           "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='{root}' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        pg(bindir / "pg_ctl", "-D", data, "-l", root / "server.log", "-o", options, "-w", "-t", "30", "start")
        engine = sqlalchemy.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
                                          isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE bridge")
        engine.dispose()
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/bridge"
    except subprocess.CalledProcessError as error:
        log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
        raise RuntimeError(f"{error.cmd} failed:\n{error.stdout.decode()}{error.stderr.decode()}\n{log}") from error
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*run, str(bindir / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate"],
                           cwd=root, capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgresql_url(postgresql_server):
    """The server's database with an empty `public` schema: each test creates the tables it needs."""
    engine = sqlalchemy.create_engine(postgresql_server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        # Connections a failed test left behind could hold locks that would block the DROP.
        conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()
    return postgresql_server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """The same test on a SQLite file and on a real PostgreSQL server, each with an empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bridge.db'}"
    return request.getfixturevalue("postgresql_url")
