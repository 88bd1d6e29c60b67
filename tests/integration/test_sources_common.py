"""What every source gets from the shared pipeline: dedup, transport decoding, charsets, client
address behind proxies, secret rotation. Over real HTTP against the app with a pinned clock."""
from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import zlib

import pytest

from tests.helpers import GITHUB_SECRET, sample
from tests.sources_harness import serve_bridge

RULES = """\
    sources:
      github:
        type: github
        secret: ["${OLD_SECRET}", "${GITHUB_WEBHOOK_SECRET}"]
      erp:
        type: hmac
        secret: ${ERP_SECRET}
        header: X-Signature
        delivery_id: headers."x-delivery"
        event: payload.event
        max_body: 20000
      office:
        type: none
        allow_ips: [127.0.0.1/32]
      branch:
        type: none
        allow_ips: [10.0.0.0/8, "2001:db8::/32"]
    rules:
      - name: push
        source: github
        event: push
        then: {action: import, site: 1}
      - name: erp
        source: erp
        then: {action: import, site: "{{ payload.site }}"}
      - name: office
        source: office
        then: {action: import, site: 3}
      - name: branch
        source: branch
        then: {action: import, site: 4}
    """
ENV = {"GITHUB_WEBHOOK_SECRET": GITHUB_SECRET, "OLD_SECRET": "retired-secret", "ERP_SECRET": "erp-secret"}


@pytest.fixture
def bridge(tmp_path):
    served = serve_bridge(tmp_path, RULES, ENV)
    yield served
    served.stop()


@pytest.fixture
def proxied(tmp_path):
    served = serve_bridge(tmp_path, RULES, ENV, trusted_proxies=1)
    yield served
    served.stop()


def erp(bridge, payload, delivery="d-1", headers=None, body=None, sign_over=None):
    body = json.dumps(payload).encode() if body is None else body
    signature = hmac.new(b"erp-secret", sign_over if sign_over is not None else body, hashlib.sha256).hexdigest()
    return bridge.post("erp", body, {"X-Signature": signature, "X-Delivery": delivery,
                                     "Content-Type": "application/json", **(headers or {})})


# ---- delivery ids ---------------------------------------------------------------------------

def test_a_redelivery_is_answered_duplicate_and_not_routed_again(bridge):
    body, headers = sample("github-push.json")
    first = bridge.post("github", body, headers)
    second = bridge.post("github", body, headers)
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["duplicate"] is True and second.json()["event_id"] == first.json()["event_id"]
    assert bridge.count() == 1 and bridge.count("intent_events") == 1


def test_same_delivery_id_from_another_source_is_not_a_duplicate(bridge):
    assert erp(bridge, {"site": 5}, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0950").status_code == 202
    body, headers = sample("github-push.json")   # the same id, but GitHub's
    assert bridge.post("github", body, headers).status_code == 202


def test_redelivery_of_a_rejected_event_is_processed(bridge):
    rejected = erp(bridge, {"site": "not-a-number"}, delivery="retry-me")
    assert rejected.status_code == 200 and rejected.json()["rejected"]
    again = erp(bridge, {"site": "not-a-number"}, delivery="retry-me")
    assert "duplicate" not in again.json() and again.json()["event_id"] != rejected.json()["event_id"]
    assert bridge.count() == 2


def test_redelivery_after_a_refused_request_is_processed(bridge):
    assert erp(bridge, {"site": 5}, delivery="d-9", body=b"{broken").status_code == 400
    assert erp(bridge, {"site": 5}, delivery="d-9").status_code == 202


def test_overlong_delivery_ids_and_event_types_are_stored_safely(bridge):
    answer = erp(bridge, {"site": 5, "event": "e" * 5000}, delivery="x" * 4000)
    assert answer.status_code == 202
    assert erp(bridge, {"site": 5, "event": "e" * 5000}, delivery="x" * 4000).json()["duplicate"] is True


# ---- transport and charset ------------------------------------------------------------------

def test_gzip_body_signed_before_compression(bridge):
    body = json.dumps({"site": 6}).encode()
    answer = erp(bridge, None, body=gzip.compress(body), sign_over=body, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 202 and answer.json()["intents"][0]["site"] == 6


@pytest.mark.parametrize("compress", [zlib.compress, lambda b: zlib.compress(b)[2:-4]], ids=["zlib", "raw"])
def test_deflate_in_both_spellings(bridge, compress):
    body = json.dumps({"site": 7}).encode()
    answer = erp(bridge, None, body=compress(body), sign_over=body, headers={"Content-Encoding": "deflate"})
    assert answer.status_code == 202


def test_gzip_bomb_gets_413_and_stores_nothing(bridge):
    bomb = gzip.compress(b"[" + b" " * (50 * 1024 * 1024) + b"]")   # 50 MiB in about 50 KiB
    assert len(bomb) < 100_000
    answer = bridge.post("office", bomb, {"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert answer.status_code == 413 and bridge.count() == 0
    small_cap = erp(bridge, None, body=gzip.compress(b" " * 30000), headers={"Content-Encoding": "gzip"})
    assert small_cap.status_code == 413 and bridge.count() == 0


@pytest.mark.parametrize("body, encoding, status", [
    (b"\x1f\x8b\x08\x00garbage", "gzip", 400),
    (gzip.compress(b'{"site": 1}')[:-6], "gzip", 400),
    (b"{}", "br", 415),
    (b"{}", "compress", 415),
])
def test_bad_transport_encodings(bridge, body, encoding, status):
    answer = erp(bridge, None, body=body, headers={"Content-Encoding": encoding})
    assert answer.status_code == status and "error" in answer.json()
    assert bridge.count() == 0


def test_charset_parameter_is_honoured(bridge):
    body = '{"site": 8, "name": "Müller"}'.encode("iso-8859-1")
    answer = erp(bridge, None, body=body, headers={"Content-Type": "application/json; charset=ISO-8859-1"})
    assert answer.status_code == 202


def test_unknown_charset_and_bad_utf8_are_400(bridge):
    assert erp(bridge, None, body=b'{"site": 1}', headers={"Content-Type": "application/json; charset=klingon"}
               ).status_code == 400
    assert erp(bridge, None, body=b'{"site": "\xc3"}').status_code == 400
    assert bridge.count() == 0


def test_utf8_bom_and_top_level_array(bridge):
    assert erp(bridge, None, body=b'\xef\xbb\xbf{"site": 9}').status_code == 202
    answer = bridge.post("office", b'[{"a": 1}, 2]', {"Content-Type": "application/json"})
    assert answer.status_code == 202


# ---- client address -------------------------------------------------------------------------

def test_allowlist_without_proxies_uses_the_peer_address(bridge):
    assert bridge.post("office", b"{}").status_code == 202
    assert bridge.post("branch", b"{}").status_code == 401
    # Without trusted proxies, X-Forwarded-For is the client's own word: ignored.
    assert bridge.post("branch", b"{}", {"X-Forwarded-For": "10.1.2.3"}).status_code == 401


def test_one_trusted_hop_reads_the_address_the_proxy_appended(proxied):
    assert proxied.post("branch", b"{}", {"X-Forwarded-For": "10.1.2.3"}).status_code == 202
    assert proxied.post("branch", b"{}", {"X-Forwarded-For": "2001:db8::1"}).status_code == 202


@pytest.mark.parametrize("forwarded", [
    "10.1.2.3, 203.0.113.9",      # the client forged the left entry; the proxy saw 203.0.113.9
    "", "not-an-address", "10.1.2.3.4",
])
def test_forged_or_missing_forwarded_addresses_are_refused(proxied, forwarded):
    before = proxied.count()
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    assert proxied.post("branch", b"{}", headers).status_code == 401
    assert proxied.count() == before


# ---- secrets --------------------------------------------------------------------------------

def test_any_secret_of_a_rotation_list_verifies(bridge):
    body, headers = sample("github-push.json")
    assert bridge.post("github", body, headers).status_code == 202   # signed with the second secret
    headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(b"retired-secret", body, hashlib.sha256).hexdigest()
    headers["X-GitHub-Delivery"] = "another-delivery"
    assert bridge.post("github", body, headers).status_code == 202


def test_no_secret_in_error_bodies(bridge):
    for answer in (bridge.post("github", b"{}", {"X-Hub-Signature-256": "sha256=00"}),
                   erp(bridge, None, body=b"{bad"), bridge.post("nosuch", b"{}")):
        for secret in ENV.values():
            assert secret not in answer.text


def test_lone_surrogate_in_an_event_type_or_delivery_id_is_stored_not_a_500(bridge):
    body = b'{"site": 5, "event": "\\ud800"}'
    answer = erp(bridge, None, body=body, delivery="ok")
    assert answer.status_code == 202
    tricky = b'{"site": 5, "event": "x\\udfff"}'
    signature = hmac.new(b"erp-secret", tricky, hashlib.sha256).hexdigest()
    assert bridge.post("erp", tricky, {"X-Signature": signature, "Content-Type": "application/json"}).status_code == 202


def test_delivery_ids_are_forgotten_after_the_retention_time(bridge):
    """The dispatcher prunes delivery ids older than dedup_retention (default 7 days)."""
    from bridge.dispatcher import Dispatcher
    from bridge.store import Store

    body, headers = sample("github-push.json")
    assert bridge.post("github", body, headers).status_code == 202
    store = Store.from_url(f"sqlite:///{bridge.db}")
    clock = lambda: bridge.clock.now + 7 * 86400 - 1          # noqa: E731
    Dispatcher(store, platform=None, min_interval=lambda: 300.0, clock=clock).prune(clock())
    assert bridge.post("github", body, headers).json().get("duplicate") is True
    clock = lambda: bridge.clock.now + 7 * 86400 + 1          # noqa: E731
    Dispatcher(store, platform=None, min_interval=lambda: 300.0, clock=clock).prune(clock())
    assert bridge.post("github", body, headers).status_code == 202
    store.dispose()


@pytest.mark.parametrize("body, content_type", [
    (None, "application/x-www-form-urlencoded"),        # curl's default with a JSON body
    (b"a=b", "application/x-www-form-urlencoded"),
    (b"payload=%5B1%5D", "application/x-www-form-urlencoded"),
    (b"", "application/json"),
    (b"[1, 2]", "application/json"),
])
def test_github_bodies_that_are_no_github_event_are_400_not_stored(bridge, body, content_type):
    sample_body, headers = sample("github-push.json")
    body = sample_body if body is None else body
    headers.update({"Content-Type": content_type,
                    "X-Hub-Signature-256": "sha256=" + hmac.new(GITHUB_SECRET.encode(), body,
                                                                hashlib.sha256).hexdigest()})
    answer = bridge.post("github", body, headers)
    assert answer.status_code == 400, answer.text
    assert bridge.count() == 0


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_constants_are_400(bridge, constant):
    answer = erp(bridge, None, body=b'{"site": ' + constant + b"}")
    assert answer.status_code == 400 and constant.decode().lstrip("-") in answer.json()["error"]
    assert bridge.count() == 0
