"""Code hosts over real HTTP: GitHub, GitLab, Gitea/Forgejo/Gogs and Bitbucket deliveries, byte for byte
from tests/samples, each with its negative twins (401, nothing stored).

The clock is pinned next to the GitLab sample's signing timestamp, which is years old."""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging

import pytest

from tests.helpers import GITHUB_SECRET, SAMPLES, sample
from tests.sources_harness import assert_no_secret_logged, serve_bridge

CORPUS_SECRET = "corpus-test-secret"
GITLAB_TOKEN = "gitlab-secret-token"
GITLAB_SIGNING = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GITLAB_SIGNED_AT = 1614265330
SNARE_SECRET = "secretsecret"
SECRETS = (GITHUB_SECRET, CORPUS_SECRET, GITLAB_TOKEN, GITLAB_SIGNING, SNARE_SECRET)

RULES = """\
sources:
  github: {type: github, secret: "${GITHUB_SECRET}"}
  github_sha1: {type: github, secret: "${GITHUB_SECRET}", allow_sha1: true}
  github_corpus: {type: github, secret: "${CORPUS_SECRET}"}
  snare: {type: github, secret: "${SNARE_SECRET}"}
  gitlab: {type: gitlab, secret: "${GITLAB_TOKEN}"}
  gitlab_signed: {type: gitlab, signing_secret: "${GITLAB_SIGNING}"}
  gitlab_both: {type: gitlab, secret: "${GITLAB_TOKEN}", signing_secret: ["whsec_b2xkLXJvdGF0ZWQta2V5LTMyLWJ5dGVzLWxvbmchIQ==", "${GITLAB_SIGNING}"]}
  gitea: {type: gitea, secret: "${CORPUS_SECRET}"}
  bitbucket: {type: bitbucket, secret: "${CORPUS_SECRET}"}
  bitbucket_sha1: {type: bitbucket, secret: "${CORPUS_SECRET}", allow_sha1: true}
rules:
  - name: github push
    source: github
    event: push
    when: {payload.repository.full_name: {exists: true}}
    then: {action: import, site: 1}
  - name: gitlab push
    source: gitlab
    event: Push Hook
    when: {payload.object_kind: push}
    then: {action: import, site: 2}
  - name: gitea push
    source: gitea
    event: push
    then: {action: import, site: 3}
  - name: bitbucket push
    source: bitbucket
    event: ["repo:push", "repo:refs_changed"]
    then: {action: import, site: 4}
"""


@pytest.fixture
def bridge(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    env = {"GITHUB_SECRET": GITHUB_SECRET, "CORPUS_SECRET": CORPUS_SECRET, "GITLAB_TOKEN": GITLAB_TOKEN,
           "GITLAB_SIGNING": GITLAB_SIGNING, "SNARE_SECRET": SNARE_SECRET}
    served = serve_bridge(tmp_path, RULES, env, now=GITLAB_SIGNED_AT + 30)
    yield served
    served.stop()
    assert_no_secret_logged(caplog, SECRETS)


def headers_file(name: str) -> dict[str, str]:
    """Headers of a sample that has no body file of its own (Forgejo sends Gitea's body)."""
    headers = {}
    for line in (SAMPLES / name).read_text().splitlines()[1:]:
        if not line.strip():
            break
        key, _, value = line.partition(":")
        if key.lower() not in ("content-length", "host"):
            headers[key.strip()] = value.strip()
    return headers


def accepted(bridge, response, event_type, delivery_id, status=None):
    """A stored event: its answer, and the event type and delivery id the store kept."""
    assert response.status_code in ((status,) if status else (200, 202)), response.text
    answer = response.json()
    assert answer["event_type"] == event_type and not answer.get("duplicate")
    stored = bridge.event(answer["event_id"])
    assert (stored["event_type"], stored["delivery_id"]) == (event_type, delivery_id)
    return answer


def refused(bridge, response, before=0):
    assert response.status_code == 401, response.text
    assert "error" in response.json()
    assert bridge.count() == before


def hub(secret: str, body: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}=" + hmac.new(secret.encode(), body, algorithm).hexdigest()


def one_byte_changed(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1:]


# ---- GitHub --------------------------------------------------------------------------------------

GITHUB_SAMPLES = [
    ("github-push.json", "push", "72d3162e-cc78-11e3-81ab-4c9367dc0950", 202),
    ("github-push-tag-delete.json", "push", "72d3162e-cc78-11e3-81ab-4c9367dc0951", 202),
    ("github-release-published.json", "release", "72d3162e-cc78-11e3-81ab-4c9367dc0953", 200),
    ("github-workflow_run-completed.json", "workflow_run", "72d3162e-cc78-11e3-81ab-4c9367dc0954", 200),
    ("github-ping.json", "ping", "72d3162e-cc78-11e3-81ab-4c9367dc0952", 200),
    ("github-push.form.txt", "push", "84783b4e-32da-11ed-98da-a6627229a26f", 202),
    ("github-ping.form.txt", "ping", "84783b4e-32da-11ed-98da-a6627229a26f", 200),
]


@pytest.mark.parametrize("name, event_type, delivery_id, status", GITHUB_SAMPLES,
                         ids=[case[0] for case in GITHUB_SAMPLES])
def test_every_github_sample_verifies_with_its_event_and_delivery(bridge, name, event_type, delivery_id, status):
    body, headers = sample(name)
    answer = accepted(bridge, bridge.post("github", body, headers), event_type, delivery_id, status)
    if status == 202:  # the payload was parsed (JSON or form), so the rule's condition could read it
        assert answer["matched"] == ["github push"]
    assert bridge.count() == 1


def test_github_published_test_vector_verifies_before_parsing(bridge):
    """'Hello, World!' with GitHub's documented secret: the signature passes byte for byte, then the
    body, sent as application/json but not JSON, is a 400 and nothing is stored. A wrong byte is a
    401: the signature is checked first, over the raw bytes."""
    body, headers = sample("github-testvector.txt")
    assert body == b"Hello, World!"
    assert headers["X-Hub-Signature-256"] == hub(GITHUB_SECRET, body)
    answer = bridge.post("github", body, headers)
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["error"]
    refused(bridge, bridge.post("github", b"Hello, World?", headers))
    assert bridge.count() == 0


def test_snare_form_test_vector(bridge):
    body, headers = sample("github-snare-form-testvector.txt")
    answer = accepted(bridge, bridge.post("snare", body, headers), "issues", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert answer["matched"] == []
    refused(bridge, bridge.post("github", body, headers), before=1)   # same bytes, another secret


def test_ping_is_stored_as_an_ignored_event(bridge):
    body, headers = sample("github-ping.json")
    answer = bridge.post("github", body, headers)
    assert answer.status_code == 200 and answer.json()["matched"] == []
    assert bridge.event(answer.json()["event_id"])["fate"] == "ignored"
    assert bridge.count() == 1


def test_duplicate_delivery_is_answered_200_and_stored_once(bridge):
    body, headers = sample("github-push.json")
    first = bridge.post("github", body, headers)
    again = bridge.post("github", body, headers)
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["event_id"] == first.json()["event_id"]
    assert bridge.count() == 1


GITHUB_NEGATIVES = {
    "one-byte-changed": lambda body, h: (one_byte_changed(body), h),
    "wrong-secret": lambda body, h: (body, {**h, "X-Hub-Signature-256": hub(CORPUS_SECRET, body)}),
    "missing-header": lambda body, h: (body, {k: v for k, v in h.items() if not k.startswith("X-Hub")}),
    "non-ascii": lambda body, h: (body, {**h, "X-Hub-Signature-256": "sha256=ü".encode("utf-8")}),
    "swapped-prefix": lambda body, h: (body, {**h, "X-Hub-Signature-256": h["X-Hub-Signature"]}),
    "sha1-alone": lambda body, h: (body, {k: v for k, v in h.items() if k != "X-Hub-Signature-256"}),
    "sha256-in-legacy-header": lambda body, h: (body, {**{k: v for k, v in h.items() if k != "X-Hub-Signature-256"},
                                                        "X-Hub-Signature": h["X-Hub-Signature-256"]}),
}


@pytest.mark.parametrize("change", list(GITHUB_NEGATIVES.values()), ids=list(GITHUB_NEGATIVES))
def test_github_negative_twins(bridge, change):
    body, headers = change(*sample("github-push.json"))
    refused(bridge, bridge.post("github", body, headers))


def test_sha1_only_when_the_source_allows_it(bridge):
    body, headers = sample("github-push.json")
    refused(bridge, bridge.post("github", body, legacy_only(headers)))
    accepted(bridge, bridge.post("github_sha1", body, legacy_only(headers)), "push", headers["X-GitHub-Delivery"])


def legacy_only(headers, **changed):
    return {**{k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}, **changed}


@pytest.mark.parametrize("change", [
    lambda h: {**h, "X-Hub-Signature-256": "sha256=" + "0" * 64},            # no downgrade past a wrong SHA-256
    lambda h: legacy_only(h, **{"X-Hub-Signature": "sha1=" + "0" * 40}),
    lambda h: legacy_only(h, **{"X-Hub-Signature": "sha256=" + h["X-Hub-Signature"][5:]}),  # SHA-1 value
    lambda h: legacy_only(h, **{"X-Hub-Signature": "sha1=ü".encode("utf-8")}),
], ids=["wrong-sha256-right-sha1", "wrong-sha1", "swapped-prefix", "non-ascii"])
def test_sha1_allowed_source_still_refuses_bad_signatures(bridge, change):
    body, headers = sample("github-push.json")
    refused(bridge, bridge.post("github_sha1", body, change(headers)))


def test_github_source_refuses_a_gitea_delivery_that_its_signature_would_pass(bridge):
    """Gitea and Forgejo send X-GitHub-Event and an X-Hub-Signature-256 that is valid under the
    shared secret; the github source still refuses them, because they name themselves."""
    body, gitea_headers = sample("gitea-push.json")
    assert gitea_headers["X-GitHub-Event"] == "push"
    assert gitea_headers["X-Hub-Signature-256"] == hub(CORPUS_SECRET, body)
    refused(bridge, bridge.post("github_corpus", body, gitea_headers))
    refused(bridge, bridge.post("github_corpus", body, headers_file("forgejo-push.headers.txt")))
    # Control: with only the GitHub-style headers left, the signature is good and the delivery passes,
    # so the refusals above come from telling the senders apart, not from the signature.
    github_style = {k: v for k, v in gitea_headers.items() if not k.lower().startswith(("x-gitea", "x-gogs"))}
    accepted(bridge, bridge.post("github_corpus", body, github_style), "push", gitea_headers["X-GitHub-Delivery"])


# ---- Gitea, Forgejo, Gogs ----------------------------------------------------------------------

@pytest.mark.parametrize("headers_of", [
    lambda: sample("gitea-push.json")[1],
    lambda: headers_file("forgejo-push.headers.txt"),
    lambda: {k: v for k, v in sample("gitea-push.json")[1].items() if not k.lower().startswith(("x-gitea", "x-hub",
                                                                                                 "x-github"))},
], ids=["gitea", "forgejo", "gogs-headers-only"])
def test_gitea_family_deliveries_verify(bridge, headers_of):
    body, _ = sample("gitea-push.json")
    answer = accepted(bridge, bridge.post("gitea", body, headers_of()), "push",
                      "f6266f16-1bf3-46a5-9ea4-602e06ead473", 202)
    assert answer["matched"] == ["gitea push"]


GITEA_NEGATIVES = {
    "one-byte-changed": lambda body, h: (one_byte_changed(body), h),
    "wrong-secret": lambda body, h: (body, {**h, **{k: hub(GITHUB_SECRET, body)[7:] for k in h
                                                   if k.endswith("-Signature")}}),
    "missing-header": lambda body, h: (body, {k: v for k, v in h.items() if not k.endswith("-Signature")}),
    "non-ascii": lambda body, h: (body, {**h, "X-Gitea-Signature": "ü".encode("utf-8")}),
    "prefixed": lambda body, h: (body, {**h, "X-Gitea-Signature": "sha256=" + h["X-Gitea-Signature"]}),
    "one-of-three-wrong": lambda body, h: (body, {**h, "X-Gogs-Signature": "0" * 64}),
}


@pytest.mark.parametrize("change", list(GITEA_NEGATIVES.values()), ids=list(GITEA_NEGATIVES))
def test_gitea_negative_twins(bridge, change):
    body, headers = change(sample("gitea-push.json")[0], headers_file("forgejo-push.headers.txt"))
    refused(bridge, bridge.post("gitea", body, headers))


def test_gitea_source_refuses_a_github_style_delivery(bridge):
    """A delivery signed GitHub's way with the gitea source's own secret still lacks Gitea's header."""
    body, gitea_headers = sample("gitea-push.json")
    github_style = {k: v for k, v in gitea_headers.items() if not k.lower().startswith(("x-gitea", "x-gogs"))}
    refused(bridge, bridge.post("gitea", body, github_style))


# ---- GitLab ------------------------------------------------------------------------------------

GITLAB_DELIVERY = "e5eaa373-7358-400b-847f-cca1e9869287"
SIGNING_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def gitlab_token_only():
    body, headers = sample("gitlab-push.json")
    return body, {k: v for k, v in headers.items() if k.lower() not in SIGNING_HEADERS}


def gitlab_signature_only():
    body, headers = sample("gitlab-push.json")
    return body, {k: v for k, v in headers.items() if k != "X-Gitlab-Token"}


def test_gitlab_token(bridge):
    body, headers = gitlab_token_only()
    answer = accepted(bridge, bridge.post("gitlab", body, headers), "Push Hook", GITLAB_DELIVERY, 202)
    assert answer["matched"] == ["gitlab push"]


def test_gitlab_signing_token_with_the_clock_pinned_to_the_sample(bridge):
    body, headers = gitlab_signature_only()
    accepted(bridge, bridge.post("gitlab_signed", body, headers), "Push Hook", GITLAB_DELIVERY)


def test_gitlab_signed_replay_with_a_new_idempotency_key_is_a_duplicate(bridge):
    """The signed webhook-id names the delivery: the unsigned Idempotency-Key cannot launder a replay."""
    body, headers = gitlab_signature_only()
    first = bridge.post("gitlab_signed", body, headers)
    replay = bridge.post("gitlab_signed", body, {**headers, "Idempotency-Key": "fresh-key-xyz"})
    assert first.status_code in (200, 202) and replay.json().get("duplicate") is True
    assert bridge.count() == 1


def test_gitlab_stale_signature_is_refused(bridge):
    body, headers = gitlab_signature_only()
    bridge.clock.now = GITLAB_SIGNED_AT + 301          # tolerance is 5 minutes by default
    refused(bridge, bridge.post("gitlab_signed", body, headers))
    bridge.clock.now = GITLAB_SIGNED_AT - 301          # and a timestamp from the future too
    refused(bridge, bridge.post("gitlab_signed", body, headers))


def test_gitlab_both_checks_configured_need_both(bridge):
    """gitlab_both lists an old signing key first (rotation): the sample's key, second, matches."""
    body, headers = sample("gitlab-push.json")
    refused(bridge, bridge.post("gitlab_both", body, gitlab_token_only()[1]))
    refused(bridge, bridge.post("gitlab_both", body, gitlab_signature_only()[1]))
    refused(bridge, bridge.post("gitlab_both", body, {**headers, "X-Gitlab-Token": "not-the-token"}))
    accepted(bridge, bridge.post("gitlab_both", body, headers), "Push Hook", GITLAB_DELIVERY)


def test_gitlab_several_signatures_in_one_header(bridge):
    body, headers = gitlab_signature_only()
    other = base64.b64encode(hashlib.sha256(b"another key").digest()).decode()
    headers["webhook-signature"] = f"v1,{other} v1a,{other} {headers['webhook-signature']}"
    accepted(bridge, bridge.post("gitlab_signed", body, headers), "Push Hook", GITLAB_DELIVERY)


GITLAB_NEGATIVES = {
    "token-wrong": ("gitlab", lambda: (gitlab_token_only()[0], {**gitlab_token_only()[1], "X-Gitlab-Token": "nope"})),
    "token-missing": ("gitlab", lambda: (gitlab_token_only()[0], {k: v for k, v in gitlab_token_only()[1].items()
                                                                   if k != "X-Gitlab-Token"})),
    "token-non-ascii": ("gitlab", lambda: (gitlab_token_only()[0], {**gitlab_token_only()[1],
                                                                     "X-Gitlab-Token": "gitlab-secret-tökén".encode()})),
    "token-prefix-only": ("gitlab", lambda: (gitlab_token_only()[0], {**gitlab_token_only()[1],
                                                                       "X-Gitlab-Token": "gitlab-secret"})),
    "signed-one-byte-changed": ("gitlab_signed", lambda: (one_byte_changed(gitlab_signature_only()[0]),
                                                          gitlab_signature_only()[1])),
    "signed-wrong-secret": ("gitlab_signed", lambda: resign(b"wrong key, 32 bytes long........")),
    "signed-missing-signature": ("gitlab_signed", lambda: without("webhook-signature")),
    "signed-missing-id": ("gitlab_signed", lambda: without("webhook-id")),
    "signed-missing-timestamp": ("gitlab_signed", lambda: without("webhook-timestamp")),
    "signed-other-id": ("gitlab_signed", lambda: replaced("webhook-id", GITLAB_DELIVERY[:-1] + "8")),
    "signed-non-ascii": ("gitlab_signed", lambda: replaced("webhook-signature", "v1,ü".encode())),
    "signed-swapped-version": ("gitlab_signed", lambda: replaced(
        "webhook-signature", "v1a," + gitlab_signature_only()[1]["webhook-signature"][3:])),
    "signed-timestamp-not-integer": ("gitlab_signed", lambda: replaced("webhook-timestamp", f"{GITLAB_SIGNED_AT}.0")),
    "signed-token-instead": ("gitlab_signed", gitlab_token_only),
}


def without(name):
    body, headers = gitlab_signature_only()
    return body, {k: v for k, v in headers.items() if k != name}


def replaced(name, value):
    body, headers = gitlab_signature_only()
    return body, {**headers, name: value}


def resign(key: bytes):
    body, headers = gitlab_signature_only()
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return body, {**headers, "webhook-signature": "v1," + base64.b64encode(hmac.new(key, signed, "sha256").digest())
                  .decode()}


@pytest.mark.parametrize("source, make", list(GITLAB_NEGATIVES.values()), ids=list(GITLAB_NEGATIVES))
def test_gitlab_negative_twins(bridge, source, make):
    body, headers = make()
    refused(bridge, bridge.post(source, body, headers))


# ---- Bitbucket ---------------------------------------------------------------------------------

BITBUCKET_SAMPLES = [
    ("bitbucket-cloud-repo-push.json", "repo:push", "0b1b2b3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"),
    ("bitbucket-server-repo-refs-changed.json", "repo:refs_changed", "4f8a3c2e-8d2b-4a51-9c1e-6f0d3b2a1e77"),
]


@pytest.mark.parametrize("name, event_type, delivery_id", BITBUCKET_SAMPLES, ids=["cloud", "data-center"])
def test_bitbucket_samples_verify(bridge, name, event_type, delivery_id):
    body, headers = sample(name)
    answer = accepted(bridge, bridge.post("bitbucket", body, headers), event_type, delivery_id, 202)
    assert answer["matched"] == ["bitbucket push"]


BITBUCKET_NEGATIVES = {
    "one-byte-changed": lambda body, h: (one_byte_changed(body), h),
    "wrong-secret": lambda body, h: (body, {**h, "X-Hub-Signature": hub(GITHUB_SECRET, body)}),
    "missing-header": lambda body, h: (body, {k: v for k, v in h.items() if k != "X-Hub-Signature"}),
    "non-ascii": lambda body, h: (body, {**h, "X-Hub-Signature": "sha256=ü".encode("utf-8")}),
    "swapped-prefix": lambda body, h: (body, {**h, "X-Hub-Signature": "sha1=" + h["X-Hub-Signature"][7:]}),
    "no-prefix": lambda body, h: (body, {**h, "X-Hub-Signature": h["X-Hub-Signature"][7:]}),
    "sha1-not-allowed": lambda body, h: (body, {**h, "X-Hub-Signature": hub(CORPUS_SECRET, body, "sha1")}),
    "sha512-unknown": lambda body, h: (body, {**h, "X-Hub-Signature": hub(CORPUS_SECRET, body, "sha512")}),
    "no-event-key": lambda body, h: (body, {k: v for k, v in h.items() if k != "X-Event-Key"}),
}


@pytest.mark.parametrize("name", [case[0] for case in BITBUCKET_SAMPLES], ids=["cloud", "data-center"])
@pytest.mark.parametrize("change", list(BITBUCKET_NEGATIVES.values()), ids=list(BITBUCKET_NEGATIVES))
def test_bitbucket_negative_twins(bridge, name, change):
    body, headers = change(*sample(name))
    refused(bridge, bridge.post("bitbucket", body, headers))


def test_bitbucket_sha1_only_when_allowed_and_only_by_its_prefix(bridge):
    body, headers = sample("bitbucket-cloud-repo-push.json")
    sha1 = {**headers, "X-Hub-Signature": hub(CORPUS_SECRET, body, "sha1")}
    refused(bridge, bridge.post("bitbucket", body, sha1))
    accepted(bridge, bridge.post("bitbucket_sha1", body, sha1), "repo:push", headers["X-Request-UUID"])
    swapped = {**headers, "X-Hub-Signature": "sha1=" + headers["X-Hub-Signature"][7:]}
    refused(bridge, bridge.post("bitbucket_sha1", body, swapped), before=1)


def test_bitbucket_refuses_a_gitea_delivery_with_a_valid_legacy_signature(bridge):
    """Gitea's X-Hub-Signature (sha1=, same secret) passes the HMAC on an allow_sha1 source, but the
    delivery has no X-Event-Key: it is not Bitbucket's."""
    body, headers = sample("gitea-push.json")
    assert headers["X-Hub-Signature"] == hub(CORPUS_SECRET, body, "sha1")
    refused(bridge, bridge.post("bitbucket_sha1", body, headers))


@pytest.mark.parametrize("source, name, event_header, delivery_header", [
    ("github", "github-push.json", "X-GitHub-Event", "X-GitHub-Delivery"),
    ("gitea", "gitea-push.json", "X-Gitea-Event", "X-Gitea-Delivery"),
    ("gitlab", "gitlab-push.json", "X-Gitlab-Event", "Idempotency-Key"),
    ("bitbucket", "bitbucket-cloud-repo-push.json", "X-Event-Key", "X-Request-UUID"),
])
def test_signed_delivery_with_non_ascii_event_and_id_headers_is_stored_not_a_500(
        bridge, source, name, event_header, delivery_header):
    body, headers = sample(name)
    headers = {**headers, event_header: "pushé".encode("utf-8"), delivery_header: "id-ü".encode("utf-8")}
    answer = bridge.post(source, body, headers)
    assert answer.status_code == 200, answer.text
    stored = bridge.event(answer.json()["event_id"])
    assert stored["event_type"] == "pushé".encode("utf-8").decode("latin-1")
    assert stored["delivery_id"] == "id-ü".encode("utf-8").decode("latin-1")
