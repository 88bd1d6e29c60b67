"""Bad, hostile and edge-case input to POST /hooks/<source>, through a real gunicorn.

Every answer is a clear 4xx (never a 500), and nothing is stored for a request that is refused.
"""
from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import sqlite3
import sys
import textwrap

import pytest
import requests

from tests.helpers import GITHUB_SECRET, free_port, sample, start

ERP_SECRET = "erp-secret-value-123"
TOKEN = "token-value-456"

RULES = textwrap.dedent("""\
    defaults:
      debounce: {quiet: 1h, max_wait: 2h}
      min_interval: 5m
    sources:
      github:
        type: github
        secret: ${GITHUB_WEBHOOK_SECRET}
      erp:
        type: hmac
        secret: ${ERP_WEBHOOK_SECRET}
        header: X-Signature
        algorithm: sha256
        encoding: hex
        prefix: "sha256="
        event: payload.event
        max_body: 1000
      odoo:
        type: token
        secret: ${ODOO_TOKEN}
        query: token
      open:
        type: none
    rules:
      - name: hello world pushed
        source: github
        event: push
        when:
          payload.repository.full_name: Codertocat/Hello-World
        then:
          - {action: import, site: 11}
          - {action: export, site: 12, id: 5}
      - name: erp batch
        source: erp
        event: batch.completed
        then: {action: all, site: "{{ payload.site_id }}"}
      - name: odoo
        source: odoo
        then: {action: import, site: 13}
      - name: open
        source: open
        then: {action: import, site: 14}
    """)


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    (tmp / "rules.yaml").write_text(RULES)
    port = free_port()
    env = {"DATABASE_URL": f"sqlite:///{tmp / 'bridge.db'}", "BRIDGE_RULES": str(tmp / "rules.yaml"),
           "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET, "ERP_WEBHOOK_SECRET": ERP_SECRET, "ODOO_TOKEN": TOKEN,
           "PRODUCTSUP_API_URL": "http://127.0.0.1:9", "PRODUCTSUP_AUTH_TOKEN": "1:never-called"}
    server = start([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--no-control-socket", "--worker-class", "gthread",
                    "--threads", "4", "bridge.app:create_app()"], port, env, tmp / "web.log")
    server.db = tmp / "bridge.db"
    yield server
    server.stop()
    log = server.log()
    for secret in (GITHUB_SECRET, ERP_SECRET, TOKEN, "never-called"):
        assert secret not in log


def count(web, table="events"):
    with sqlite3.connect(web.db) as db:
        return db.execute(f"select count(*) from {table}").fetchone()[0]


def erp_post(web, body: bytes, secret=ERP_SECRET, headers=None, **kwargs):
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return requests.post(web.url + "/hooks/erp", data=body,
                         headers={"X-Signature": signature, "Content-Type": "application/json", **(headers or {})},
                         timeout=10, **kwargs)


def refused(web, response, status):
    """A refused request: the status, a JSON error, and nothing stored."""
    assert response.status_code == status, response.text
    assert "error" in response.json()


def test_sample_push_fans_out_to_two_sites(web):
    body, headers = sample("github-push.json")
    answer = requests.post(web.url + "/hooks/github", data=body, headers=headers, timeout=10)
    assert answer.status_code == 202
    assert sorted((i["site"], i["action"], i["id"]) for i in answer.json()["intents"]) == \
        [(11, "import", None), (12, "export", 5)]


def test_ping_without_matching_rule_is_stored_and_answered_200(web):
    body, headers = sample("github-ping.json")
    answer = requests.post(web.url + "/hooks/github", data=body, headers=headers, timeout=10)
    assert answer.status_code == 200 and answer.json()["matched"] == []
    fate = requests.get(f"{web.url}/events/{answer.json()['event_id']}", timeout=5).json()
    assert fate["fate"] == "ignored"


@pytest.mark.parametrize("change", [
    lambda h: h.pop("X-Hub-Signature-256"),
    lambda h: h.update({"X-Hub-Signature-256": "sha256=" + "0" * 64}),
    lambda h: h.update({"X-Hub-Signature-256": "sha256=zz"}),
    lambda h: h.update({"X-Hub-Signature-256": "sha1=" + "0" * 40}),
    lambda h: h.update({"X-Hub-Signature-256": ""}),
    lambda h: h.update({"X-Hub-Signature-256": "sha256=ü".encode("utf-8")}),
], ids=["missing-only-legacy-sha1-left", "wrong", "not-hex", "sha1-prefix", "empty", "non-ascii"])
def test_github_bad_signatures_get_401_and_store_nothing(web, change):
    before = count(web)
    body, headers = sample("github-push.json")
    change(headers)
    refused(web, requests.post(web.url + "/hooks/github", data=body, headers=headers, timeout=10), 401)
    assert count(web) == before


def test_hmac_source_routes_with_template_site(web):
    answer = erp_post(web, json.dumps({"event": "batch.completed", "site_id": "321"}).encode())
    assert answer.status_code == 202
    assert answer.json()["intents"][0]["site"] == 321


@pytest.mark.parametrize("site_id", [None, 0, -3, "abc", 1.5, True, [1], {"a": 1}])
def test_bad_site_is_rejected_with_a_reason_not_a_500(web, site_id):
    answer = erp_post(web, json.dumps({"event": "batch.completed", "site_id": site_id}).encode())
    assert answer.status_code == 200
    assert answer.json()["intents"] == [] and answer.json()["rejected"][0]["rule"] == "erp batch"
    fate = requests.get(f"{web.url}/events/{answer.json()['event_id']}", timeout=5).json()
    assert fate["fate"] == "rejected" and fate["rejections"]


def test_wrong_secret_gets_401(web):
    before = count(web)
    refused(web, erp_post(web, b'{"event": "batch.completed"}', secret="wrong"), 401)
    assert count(web) == before


@pytest.mark.parametrize("body, reason", [
    (b'{"event": ', "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not valid UTF-8"),
    (b"{'single': 'quotes'}", "not valid JSON"),
])
def test_malformed_verified_body_gets_400_and_stores_nothing(web, body, reason):
    before = count(web)
    answer = erp_post(web, body)
    refused(web, answer, 400)
    assert reason in answer.json()["error"]
    assert count(web) == before


def test_deeply_nested_json_is_400_not_500(web):
    before = count(web)
    answer = requests.post(web.url + "/hooks/open", data=b"[" * 200000 + b"]" * 200000,
                           headers={"Content-Type": "application/json"}, timeout=10)
    refused(web, answer, 400)
    assert count(web) == before


def test_body_over_the_cap_gets_413(web):
    before = count(web)
    refused(web, erp_post(web, b'{"event": "x", "pad": "' + b"a" * 2000 + b'"}'), 413)
    assert count(web) == before


def test_chunked_body_over_the_cap_gets_413(web):
    before = count(web)

    def chunks():
        for _ in range(10):
            yield b"a" * 500

    answer = requests.post(web.url + "/hooks/erp", data=chunks(), headers={"X-Signature": "sha256=00"}, timeout=10)
    refused(web, answer, 413)
    assert count(web) == before


def test_default_cap_is_five_mebibytes(web):
    answer = requests.post(web.url + "/hooks/open", data=b" " * (5 * 1024 * 1024 + 1),
                           headers={"Content-Type": "application/json"}, timeout=30)
    refused(web, answer, 413)


def test_unknown_source_gets_404(web):
    before = count(web)
    refused(web, requests.post(web.url + "/hooks/nope", data=b"{}", timeout=10), 404)
    refused(web, requests.post(web.url + "/hooks/", data=b"{}", timeout=10), 404)
    assert count(web) == before


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_405(web, method):
    answer = requests.request(method, web.url + "/hooks/github", timeout=10)
    refused(web, answer, 405)
    assert "POST" in answer.headers["Allow"]


def test_token_in_query(web):
    assert requests.post(web.url + "/hooks/odoo?token=" + TOKEN, json={"a": 1}, timeout=10).status_code == 202
    before = count(web)
    for query in ("", "?token=", "?token=wrong", "?token=" + TOKEN[:-1], "?tok=" + TOKEN):
        refused(web, requests.post(web.url + "/hooks/odoo" + query, json={"a": 1}, timeout=10), 401)
    assert count(web) == before


def test_token_never_stored_with_the_event(web):
    answer = requests.post(web.url + "/hooks/odoo?token=" + TOKEN, json={"a": 1}, timeout=10)
    with sqlite3.connect(web.db) as db:
        row = db.execute("select headers, query from events where id = ?", (answer.json()["event_id"],)).fetchone()
    assert TOKEN not in row[0] + row[1]


def test_json_sent_as_text_plain_is_parsed(web):
    answer = requests.post(web.url + "/hooks/open", data=b'{"x": 1}', headers={"Content-Type": "text/plain"},
                           timeout=10)
    assert answer.status_code == 202


def test_form_without_payload_field_is_parsed_as_fields(web):
    answer = requests.post(web.url + "/hooks/open", data={"a": "1"}, timeout=10)
    assert answer.status_code == 202


def test_empty_body_is_accepted_as_null_payload(web):
    answer = requests.post(web.url + "/hooks/open", data=b"", timeout=10)
    assert answer.status_code == 202


def test_unknown_event_lookup_gets_404(web):
    refused(web, requests.get(web.url + "/events/evt_nope", timeout=5), 404)


def test_stalled_bodies_time_out_with_408_and_do_not_block_others(tmp_path):
    """Senders that stop halfway through a body (slowloris) get 408 and free their thread."""
    import socket
    import time as clock

    (tmp_path / "rules.yaml").write_text(RULES)
    port = free_port()
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}", "BRIDGE_RULES": str(tmp_path / "rules.yaml"),
           "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET, "ERP_WEBHOOK_SECRET": ERP_SECRET, "ODOO_TOKEN": TOKEN,
           "PRODUCTSUP_API_URL": "http://127.0.0.1:9", "PRODUCTSUP_AUTH_TOKEN": "1:never-called",
           "BRIDGE_BODY_TIMEOUT": "1"}
    server = start([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--no-control-socket",
                    "--worker-class", "gthread", "--threads", "2", "bridge.app:create_app()"], port, env,
                   tmp_path / "web.log")
    server.db = tmp_path / "bridge.db"
    stalled = []
    try:
        for _ in range(4):                   # twice as many as the server has threads
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            stalled.append(sock)
        started = clock.monotonic()
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
        assert clock.monotonic() - started < 8
        for sock in stalled:
            assert sock.recv(100).startswith(b"HTTP/1.1 408")
        assert count(server) == 0
    finally:
        for sock in stalled:
            sock.close()
        server.stop()
