"""AWS SNS over real HTTP: signed envelopes, subscription handshakes, S3 records.

The samples in tests/samples carry AWS's placeholder signatures, so they must fail. Their
re-signed copies (same messages, signed here with a throwaway key whose self-signed certificate
the fake outbound serves from an SNS host) must pass. Every refusal is a 401 with nothing stored,
and no URL outside AWS's SNS hosts is ever fetched."""
from __future__ import annotations

import base64
import datetime
import json
import logging

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from bridge.rules import load_config
from bridge.rules.errors import ConfigError
from tests.helpers import sample
from tests.sources_harness import FakeOutbound, serve_bridge

TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
SAMPLE_CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
SAMPLES = ["aws-sns-notification.json", "aws-sns-notification-s3-objectcreated.json",
           "aws-sns-subscription-confirmation.json", "aws-sns-unsubscribe-confirmation.json"]

RULES = f"""\
sources:
  sns:
    type: sns
    topic_arn: {TOPIC}
  sns_any:
    type: sns
    topic_arn: "*"
  sns_other:
    type: sns
    topic_arn: [arn:aws:sns:eu-central-1:123456789012:Other]
rules:
  - name: csv uploaded
    source: sns
    event: "ObjectCreated:Put"
    when:
      payload.s3.object.key: "uploads/batch-42/upload finished (1).csv"
      payload.s3.object.urlEncodedKey: "uploads/batch-42/upload+finished+%281%29.csv"
    then: {{action: import, site: 10}}
  - name: any notification
    source: sns
    event: Notification
    then: {{action: export-all, site: 11}}
  - name: second record
    source: sns
    event: "ObjectCreated:Copy"
    then: {{action: import, site: 12}}
"""


def make_key_and_cert() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com (test)")])
    now = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=3650)).sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


KEY, CERT_PEM = make_key_and_cert()
OTHER_KEY, _ = make_key_and_cert()


def sign(message: dict, key=KEY) -> dict:
    """Sign as SNS does: `Name\\nvalue\\n` for each signed field present, in SNS's order."""
    text = "".join(f"{name}\n{message[name]}\n" for name in SIGNED[message["Type"]] if name in message)
    algorithm = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
    signature = key.sign(text.encode("utf-8"), padding.PKCS1v15(), algorithm)
    return {**message, "Signature": base64.b64encode(signature).decode("ascii")}


def resigned(name: str, version: str = "1", key=KEY, **changes) -> tuple[dict, dict]:
    """A sample message with our certificate URL (plus `changes`), signed; and its headers."""
    body, headers = sample(name)
    message = {**json.loads(body), "SigningCertURL": CERT_URL, "SignatureVersion": version, **changes}
    return sign(message, key), headers


def body_of(message: dict) -> bytes:
    return json.dumps(message, indent=2).encode("utf-8")


@pytest.fixture
def bridge(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    outbound = FakeOutbound({CERT_URL: CERT_PEM, SAMPLE_CERT_URL: CERT_PEM})
    served = serve_bridge(tmp_path, RULES, outbound=outbound)
    yield served
    served.stop()


@pytest.mark.parametrize("name", SAMPLES)
def test_the_samples_placeholder_signatures_fail(bridge, name):
    body, headers = sample(name)
    answer = bridge.post("sns", body, headers)
    assert answer.status_code == 401
    assert bridge.count() == 0
    assert not [url for url in bridge.outbound.fetched if "Action=" in url]  # no SubscribeURL visited


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_resigned_notification_is_accepted_with_the_sns_defaults(bridge, version):
    message, headers = resigned("aws-sns-notification.json", version)
    answer = bridge.post("sns", body_of(message), headers)
    assert answer.status_code == 202, answer.text
    data = answer.json()
    assert data["event_type"] == "Notification"
    assert data["matched"] == ["any notification"]
    event = bridge.event(data["event_id"])
    assert event["delivery_id"] == "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
    assert event["fate"] == "pending"
    assert bridge.outbound.fetched == [CERT_URL]


def test_the_s3_record_is_unwrapped_and_its_key_decoded(bridge):
    message, headers = resigned("aws-sns-notification-s3-objectcreated.json", "2")
    answer = bridge.post("sns", body_of(message), headers)
    assert answer.status_code == 202, answer.text
    data = answer.json()
    assert data["event_type"] == "ObjectCreated:Put"
    assert data["matched"] == ["csv uploaded"]
    assert bridge.event(data["event_id"])["delivery_id"] == "95df01b4-ee98-5cb9-9903-4c221d41eb5e"


def test_s3_records_split_into_events_with_their_own_fate(bridge):
    body, headers = sample("aws-sns-notification-s3-objectcreated.json")
    inner = json.loads(json.loads(body)["Message"])
    copy = json.loads(json.dumps(inner["Records"][0]))
    copy["eventName"] = "ObjectCreated:Copy"
    copy["s3"]["object"]["key"] = "other/file.csv"
    deleted = {**copy, "eventName": "ObjectRemoved:Delete"}
    inner["Records"] += [copy, deleted]
    message, headers = resigned("aws-sns-notification-s3-objectcreated.json", Message=json.dumps(inner))
    answer = bridge.post("sns", body_of(message), headers)
    assert answer.status_code == 202, answer.text
    events = answer.json()["events"]
    assert [e["event_type"] for e in events] == ["ObjectCreated:Put", "ObjectCreated:Copy", "ObjectRemoved:Delete"]
    fates = [bridge.event(e["event_id"]) for e in events]
    assert [f["delivery_id"] for f in fates] == [f"95df01b4-ee98-5cb9-9903-4c221d41eb5e#{i}" for i in range(3)]
    assert [f["fate"] for f in fates] == ["pending", "pending", "ignored"]
    assert [f["matched_rules"] for f in fates] == [["csv uploaded"], ["second record"], []]


def test_a_redelivered_notification_is_stored_once(bridge):
    message, headers = resigned("aws-sns-notification.json")
    first = bridge.post("sns", body_of(message), headers)
    again = bridge.post("sns", body_of(message), headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["event_id"] == first.json()["event_id"]
    assert bridge.count() == 1
    assert bridge.outbound.fetched == [CERT_URL]  # the certificate is cached by URL


def test_a_subscription_confirmation_is_confirmed_and_stores_nothing(bridge):
    message, headers = resigned("aws-sns-subscription-confirmation.json")
    bridge.outbound.responses[message["SubscribeURL"]] = b"<ConfirmSubscriptionResponse/>"
    answer = bridge.post("sns", body_of(message), headers)
    assert answer.status_code == 200
    assert answer.json() == {"confirmed": True, "topic_arn": TOPIC}
    assert bridge.outbound.fetched == [CERT_URL, message["SubscribeURL"]]
    assert bridge.count() == 0


def test_a_confirmation_that_sns_does_not_accept_is_not_acknowledged(bridge):
    message, headers = resigned("aws-sns-subscription-confirmation.json")
    answer = bridge.post("sns", body_of(message), headers)  # the fake answers 404 for SubscribeURL
    assert answer.status_code == 502
    assert bridge.count() == 0


def test_an_unsubscribe_confirmation_is_acknowledged_and_never_visited(bridge):
    message, headers = resigned("aws-sns-unsubscribe-confirmation.json")
    bridge.outbound.responses[message["SubscribeURL"]] = b"<ConfirmSubscriptionResponse/>"
    answer = bridge.post("sns", body_of(message), headers)
    assert answer.status_code == 200
    assert answer.json()["acknowledged"] == "UnsubscribeConfirmation"
    assert bridge.outbound.fetched == [CERT_URL]
    assert bridge.count() == 0


@pytest.mark.parametrize("cert_url", [
    "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
    "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
    "https://evil.example/sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
    "https://sns.us-east-1.amazonaws.com@evil.example/SimpleNotificationService-1.pem",
    "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
    "https://s3.amazonaws.com/SimpleNotificationService-1.pem",
    "https://sns.us-east-1.amazonaws.co/SimpleNotificationService-1.pem",
])
def test_a_certificate_outside_the_sns_hosts_is_never_fetched(bridge, cert_url):
    message, headers = resigned("aws-sns-notification.json", SigningCertURL=cert_url)
    bridge.outbound.responses[cert_url] = CERT_PEM
    assert bridge.post("sns", body_of(message), headers).status_code == 401
    assert bridge.outbound.fetched == []
    assert bridge.count() == 0


@pytest.mark.parametrize("host", ["sns.cn-north-1.amazonaws.com.cn", "sns.us-gov-west-1.amazonaws.com"])
def test_china_and_govcloud_hosts_are_sns_hosts(bridge, host):
    url = f"https://{host}/SimpleNotificationService-1.pem"
    bridge.outbound.responses[url] = CERT_PEM
    message, headers = resigned("aws-sns-notification.json", SigningCertURL=url)
    assert bridge.post("sns", body_of(message), headers).status_code == 202
    assert bridge.outbound.fetched == [url]


def test_a_subscribe_url_outside_aws_is_never_visited(bridge):
    evil = "https://evil.example/?Action=ConfirmSubscription&Token=1"
    message, headers = resigned("aws-sns-subscription-confirmation.json", SubscribeURL=evil)
    bridge.outbound.responses[evil] = b"ok"
    assert bridge.post("sns", body_of(message), headers).status_code == 401
    assert evil not in bridge.outbound.fetched
    assert bridge.count() == 0


def test_a_topic_outside_the_allowlist_is_refused_without_a_fetch(bridge):
    message, headers = resigned("aws-sns-notification.json")
    assert bridge.post("sns_other", body_of(message), headers).status_code == 401
    assert bridge.outbound.fetched == []
    assert bridge.post("sns_any", body_of(message), headers).status_code == 200  # stored, no rule
    assert bridge.count() == 1


def tampered_byte(message: dict) -> bytes:
    body = body_of(message)
    at = body.index(b"Hello world!")
    return body[:at] + b"J" + body[at + 1:]


def wrong_key(message: dict) -> bytes:
    return body_of(sign(message, OTHER_KEY))


NEGATIVES = {
    "one byte changed in Message": tampered_byte,
    "signed by another key": wrong_key,
    "signature version 3": lambda m: body_of({**m, "SignatureVersion": "3"}),
    "signature missing": lambda m: body_of({k: v for k, v in m.items() if k != "Signature"}),
    "signature not base64": lambda m: body_of({**m, "Signature": "not base64!"}),
    "signature with non-ASCII": lambda m: body_of({**m, "Signature": "é" + m["Signature"]}),
    "subject added after signing": lambda m: body_of({**m, "Subject": "changed"}),
    "message not text": lambda m: body_of({**m, "Message": 42}),
    "type unknown": lambda m: body_of({**m, "Type": "Other"}),
    "type a list": lambda m: body_of({**m, "Type": ["Notification"]}),
    "version an object": lambda m: body_of({**m, "SignatureVersion": {"1": 1}}),
    "topic a list": lambda m: body_of({**m, "TopicArn": [TOPIC]}),
    "cert url not text": lambda m: body_of({**m, "SigningCertURL": ["x"]}),
    "not JSON": lambda m: b"Type=Notification",
    "a JSON array": lambda m: b"[1, 2]",
    "invalid UTF-8": lambda m: b'{"Type": "\xff"}',
    "deeply nested": lambda m: b"[" * 100000,
    "empty": lambda m: b"",
}


@pytest.mark.parametrize("change", NEGATIVES.values(), ids=NEGATIVES.keys())
def test_negative_twins_are_401_and_store_nothing(bridge, change):
    message, headers = resigned("aws-sns-notification.json")
    answer = bridge.post("sns", change(message), headers)
    assert answer.status_code == 401
    assert bridge.count() == 0


def test_a_non_ascii_header_value_is_no_500(bridge):
    message, headers = resigned("aws-sns-notification.json")
    hostile = {**headers, "x-amz-sns-message-type": "Notificatión".encode("utf-8")}
    assert bridge.post("sns", tampered_byte(message), hostile).status_code == 401
    assert bridge.post("sns", body_of(message), hostile).status_code == 202  # SNS signs the body, not headers
    assert bridge.count() == 1


def test_topic_arn_is_required(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("sources:\n  sns: {type: sns}\n")
    with pytest.raises(ConfigError) as error:
        load_config(rules, {})
    assert "topic_arn" in str(error.value)


def test_an_over_long_integer_is_no_500(bridge):
    """Python's json refuses integers over 4300 digits with a ValueError, not a JSONDecodeError."""
    huge = "1" * 5000
    assert bridge.post("sns", b'{"Type": "Notification", "n": ' + huge.encode() + b"}", {}).status_code == 401
    message, headers = resigned("aws-sns-notification.json", Message='{"n": ' + huge + "}")
    answer = bridge.post("sns", body_of(message), headers)
    assert answer.status_code == 202  # the Message stays text
    assert bridge.count() == 1
