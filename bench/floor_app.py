"""The floor for bench/ingest.py: a bare Flask app that only checks GitHub's HMAC and answers 202.

It does the least any honest webhook receiver must do (read the raw body, HMAC-SHA256 it, compare
in constant time) and nothing else: no parsing, no rules, no database. Gunicorn runs it as
``floor_app:create_app()`` with ``--pythonpath bench``; the secret comes from GITHUB_WEBHOOK_SECRET.
"""
from __future__ import annotations

import hashlib
import hmac
import os

from flask import Flask, jsonify, request


def create_app() -> Flask:
    secret = os.environ["GITHUB_WEBHOOK_SECRET"].encode()
    app = Flask("floor")

    @app.post("/hooks/<name>")
    def receive(name: str):
        body = request.get_data(cache=False)
        expected = b"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        given = request.headers.get("X-Hub-Signature-256", "").encode()
        if not hmac.compare_digest(expected, given):
            return jsonify(error="verification failed"), 401
        return jsonify(accepted=True), 202

    @app.get("/healthz")
    def healthz():
        return jsonify(ok=True)

    return app
