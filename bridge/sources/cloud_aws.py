"""AWS SNS over HTTP(S): signed JSON envelopes (sent as text/plain), subscription handshakes, and
the S3 event notifications they often carry.

Why each check exists:
- The signature (SignatureVersion 1 = SHA1withRSA, 2 = SHA256withRSA) covers the fields SNS lists
  for each message type, as `Name\\nvalue\\n` pairs in byte order of the names. It is checked
  against the certificate at SigningCertURL, fetched only over https from an SNS host of AWS:
  anything else could be a certificate the attacker made, so it is refused without a fetch.
- A valid signature proves only that *some* AWS topic sent the message: anyone can subscribe our
  URL to a topic of their own. So `topic_arn` is required; `"*"` accepts any topic, on purpose.
- SubscriptionConfirmation: confirmed (GET SubscribeURL) only after both checks pass and only on an
  SNS host; it is answered 200 and stores no event. UnsubscribeConfirmation is acknowledged and its
  SubscribeURL (which would re-subscribe) is never visited.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from typing import Any
from urllib.parse import unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.sources.base import RawRequest, Reply, Unverified
from bridge.sources.bodies import decode_text, media_type_and_charset, parse_json
from bridge.sources.cloud_common import (NOT_JSON, BoundedCache, EnvelopeSchema, EnvelopeSource, Item, StringListField,
                                         https_host, json_or_none, text_or_none)

log = logging.getLogger("bridge.sources.sns")

SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
NOTIFICATION, CONFIRMATION, UNSUBSCRIBE = "Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"
SIGNED_FIELDS = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    UNSUBSCRIBE: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
ANY_TOPIC = "*"


def is_sns_url(url: Any) -> bool:
    host = https_host(url)
    return host is not None and SNS_HOST.fullmatch(host) is not None


def string_to_sign(message: dict) -> bytes | None:
    """SNS's canonical text for a message, or None when a signed field is missing or not text.
    Subject is signed only when the notification has one."""
    lines = []
    for name in SIGNED_FIELDS[message["Type"]]:
        value = message.get(name)
        if name == "Subject" and value is None:
            continue
        if not isinstance(value, str):
            return None
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode("utf-8")


class SnsSchema(EnvelopeSchema):
    topic_arn = StringListField(required=True)


class SnsSource(EnvelopeSource):
    type_name = "sns"
    schema = SnsSchema

    def __init__(self, name, options):
        super().__init__(name, options)
        self.certificates = BoundedCache()

    # ---- verification ---------------------------------------------------------------------

    def verify(self, request: RawRequest) -> bool:
        message = self.envelope(request.body)
        if message is None or not self.topic_allowed(message.get("TopicArn")):
            return False
        if not is_sns_url(message.get("SigningCertURL")):
            return False
        if message["Type"] == CONFIRMATION and not is_sns_url(message.get("SubscribeURL")):
            return False
        signed = string_to_sign(message)
        signature = self.signature_bytes(message.get("Signature"))
        if signed is None or signature is None:
            return False
        key = self.public_key(message["SigningCertURL"])
        if key is None:
            return False
        try:
            key.verify(signature, signed, padding.PKCS1v15(), HASHES[message["SignatureVersion"]]())
        except InvalidSignature:
            return False
        return True

    @staticmethod
    def envelope(body: bytes) -> dict | None:
        message = json_or_none(body)
        if message is NOT_JSON or not isinstance(message, dict):
            return None
        kind, version = message.get("Type"), message.get("SignatureVersion")
        if not (isinstance(kind, str) and kind in SIGNED_FIELDS and isinstance(version, str) and version in HASHES):
            return None
        return message

    def topic_allowed(self, topic: Any) -> bool:
        allowed = self.options["topic_arn"]
        return isinstance(topic, str) and (ANY_TOPIC in allowed or topic in allowed)

    @staticmethod
    def signature_bytes(text: Any) -> bytes | None:
        if not isinstance(text, str):
            return None
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            return None

    def public_key(self, url: str) -> rsa.RSAPublicKey | None:
        """The RSA key of the certificate at `url` (an SNS host, checked by the caller), cached."""
        key = self.certificates.get(url)
        if key is not None:
            return key
        pem = self.fetch(url)
        if pem is None:
            log.warning("source %s: could not fetch the SNS signing certificate %s", self.name, url)
            return None
        try:
            key = x509.load_pem_x509_certificate(pem).public_key()
        except ValueError:
            return None
        if not isinstance(key, rsa.RSAPublicKey):
            return None
        self.certificates.put(url, key)
        return key

    # ---- after verification ---------------------------------------------------------------

    def parse(self, request: RawRequest) -> dict:
        _, charset = media_type_and_charset(request.content_type)
        return parse_json(decode_text(request.body, charset))

    def handshake(self, message: dict, request: RawRequest) -> Reply | None:
        if message["Type"] == CONFIRMATION:
            return self.confirm(message)
        if message["Type"] == UNSUBSCRIBE:
            log.info("source %s: SNS unsubscribe confirmation for %s acknowledged (not re-subscribed)",
                     self.name, message["TopicArn"])
            return Reply(200, {"acknowledged": UNSUBSCRIBE, "topic_arn": message["TopicArn"]})
        return None

    def confirm(self, message: dict) -> Reply:
        url = message["SubscribeURL"]
        if not is_sns_url(url):  # checked in verify too; never visit anything else
            raise Unverified()
        if self.fetch(url) is None:
            log.warning("source %s: confirming the SNS subscription to %s failed", self.name, message["TopicArn"])
            return Reply(502, {"error": "could not confirm the subscription with SNS; request a new "
                                        "confirmation for it in SNS"})
        log.info("source %s: SNS subscription to %s confirmed", self.name, message["TopicArn"])
        return Reply(200, {"confirmed": True, "topic_arn": message["TopicArn"]})

    def split(self, message: dict, request: RawRequest) -> list[Item]:
        return notification_items(message)


def notification_items(message: dict) -> list[Item]:
    """A Notification's events: one per S3 record, else the unwrapped message; id = MessageId."""
    inner = unwrap_message(message.get("Message"))
    message_id = text_or_none(message.get("MessageId"))
    records = s3_records(inner)
    if records:
        return [Item(record, text_or_none(record.get("eventName")) or message["Type"], message_id)
                for record in records]
    return [Item(inner, text_or_none(message.get("Type")), message_id)]


def unwrap_message(text: Any) -> Any:
    """SNS carries the published message as a string; a JSON object or array inside is what rules
    want. Anything else (plain text, a bare number) stays the string that was published."""
    if not isinstance(text, str):
        return text
    try:
        inner = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also an over-long integer
        return text
    return inner if isinstance(inner, (dict, list)) else text


def s3_records(inner: Any) -> list[dict]:
    """S3 event records, one event each, with object keys URL-decoded into `s3.object.key`
    (S3 encodes them with `+` for space); the key as sent stays in `s3.object.urlEncodedKey`."""
    if not isinstance(inner, dict) or not isinstance(inner.get("Records"), list):
        return []
    records = [record for record in inner["Records"] if isinstance(record, dict)]
    if not records or not all(isinstance(record.get("s3"), dict) for record in records):
        return []
    return [decode_s3_key(record) for record in records]


def decode_s3_key(record: dict) -> dict:
    obj = record["s3"].get("object")
    if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
        return record
    decoded = {**obj, "key": unquote_plus(obj["key"]), "urlEncodedKey": obj["key"]}
    return {**record, "s3": {**record["s3"], "object": decoded}}


TYPES = [SnsSource]
