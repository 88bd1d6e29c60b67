"""Issue 2's acceptance: the GitHub push sample becomes debounced, rate-respecting process calls."""
from __future__ import annotations

import sqlite3
import time
import uuid

import requests

from tests.e2e.conftest import MIN_INTERVAL, QUIET, SITE
from tests.helpers import sample, wait_until


def post_push(bridge, body=None, headers=None):
    """The push sample, as GitHub sends it: every delivery has its own X-GitHub-Delivery."""
    sample_body, sample_headers = sample("github-push.json")
    sample_headers["X-GitHub-Delivery"] = str(uuid.uuid4())
    return requests.post(bridge.url + "/hooks/github", data=sample_body if body is None else body,
                         headers=sample_headers if headers is None else headers, timeout=10)


def fate(bridge, event_id):
    return requests.get(f"{bridge.url}/events/{event_id}", timeout=5).json()


def wait_fired(bridge, event_id):
    return wait_until(lambda: (f := fate(bridge, event_id))["fate"] == "fired" and f, timeout=30,
                      message=f"event {event_id} to be fired")


def test_one_push_makes_one_call_after_the_quiet_window(harness):
    bridge = harness.start_bridge()
    sent_at = time.time()
    answer = post_push(bridge)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["matched"] == ["hello world pushed to master"]
    assert body["intents"][0]["site"] == SITE and body["intents"][0]["action"] == "import"

    event = wait_fired(bridge, body["event_id"])
    calls = harness.calls()
    assert [(c["site"], c["action"], c["answer"]) for c in calls] == [(SITE, "import", "accepted")]
    assert calls[0]["at"] >= sent_at + QUIET
    assert event["intents"][0]["process_id"] == calls[0]["process_id"]


def test_twenty_pushes_in_two_seconds_make_one_call(harness):
    bridge = harness.start_bridge()
    event_ids = []
    for _ in range(20):
        answer = post_push(bridge)
        assert answer.status_code == 202
        event_ids.append(answer.json()["event_id"])
        time.sleep(0.1)  # pacing the sender, not waiting for the bridge
    fates = [wait_fired(bridge, event_id) for event_id in event_ids]
    assert len({f["intents"][0]["process_id"] for f in fates}) == 1
    assert len(harness.calls()) == 1


def test_push_during_a_run_makes_exactly_one_more_call_after_min_interval(harness):
    bridge = harness.start_bridge()
    first = wait_fired(bridge, post_push(bridge).json()["event_id"])
    # The run is going on now (the simulator started it at once: the site was idle).
    second_event = post_push(bridge).json()["event_id"]
    second = wait_fired(bridge, second_event)
    calls = harness.calls()
    assert [c["answer"] for c in calls] == ["accepted", "accepted"], calls
    assert calls[1]["at"] - calls[0]["at"] >= MIN_INTERVAL
    assert second["intents"][0]["process_id"] != first["intents"][0]["process_id"]


def test_kill_9_with_a_pending_intent_then_restart_still_calls(harness):
    bridge = harness.start_bridge()
    answer = post_push(bridge)
    assert answer.status_code == 202
    bridge.kill_hard()
    assert harness.calls() == []            # the quiet window had not passed: nothing was called
    restarted = harness.start_bridge()
    wait_fired(restarted, answer.json()["event_id"])
    assert len(harness.calls()) == 1


def test_form_encoded_push_verifies_and_routes_like_json(harness):
    bridge = harness.start_bridge()
    body, headers = sample("github-push.form.txt")
    answer = requests.post(bridge.url + "/hooks/github", data=body, headers=headers, timeout=10)
    assert answer.status_code == 202, answer.text
    assert answer.json()["matched"] == ["hello world pushed to master"]
    wait_fired(bridge, answer.json()["event_id"])


def test_one_byte_changed_gets_401_and_stores_nothing(harness):
    bridge = harness.start_bridge()
    for name in ("github-push.json", "github-push.form.txt"):
        body, headers = sample(name)
        tampered = body.replace(b"Hello-World", b"Hello-Wor1d", 1)
        assert len(tampered) == len(body) and tampered != body
        answer = requests.post(bridge.url + "/hooks/github", data=tampered, headers=headers, timeout=10)
        assert answer.status_code == 401
        assert answer.json() == {"error": "verification failed"}
    with sqlite3.connect(harness.db) as db:
        assert db.execute("select count(*) from events").fetchone()[0] == 0
        assert db.execute("select count(*) from intents").fetchone()[0] == 0
    assert harness.calls() == []


def test_web_and_two_workers_never_send_two_calls_for_one_site(harness):
    """The Procfile's shape: gunicorn web processes plus several dispatchers on one database."""
    web = harness.start_web()
    for _ in range(3):
        harness.start_worker()
    event_ids = [post_push(web).json()["event_id"] for _ in range(5)]
    for event_id in event_ids:
        wait_fired(web, event_id)
    second = post_push(web).json()["event_id"]
    wait_fired(web, second)
    calls = harness.calls()
    assert [c["answer"] for c in calls] == ["accepted", "accepted"], calls
    assert calls[1]["at"] - calls[0]["at"] >= MIN_INTERVAL


def test_quick_start_serve_without_credentials_uses_the_embedded_simulator(tmp_path):
    """README's first command: no token, no API URL: `bridge serve` calls its own local simulator."""
    import os

    from tests.e2e.conftest import RULES
    from tests.helpers import GITHUB_SECRET, bridge_command, free_port, start

    (tmp_path / "rules.yaml").write_text(RULES)
    port, sim_port = free_port(), free_port()
    env = {"PORT": str(port), "BRIDGE_SIM_PORT": str(sim_port), "BRIDGE_RULES": "rules.yaml",
           "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET, "BRIDGE_TICK_SECONDS": "0.1"}
    for name in ("PRODUCTSUP_AUTH_TOKEN", "PRODUCTSUP_API_URL", "DATABASE_URL"):
        os.environ.pop(name, None)
    bridge = start(bridge_command("serve", "--host", "127.0.0.1"), port, env, tmp_path / "serve.log", cwd=tmp_path)
    try:
        answer = post_push(bridge)
        assert answer.status_code == 202
        wait_fired(bridge, answer.json()["event_id"])
        calls = requests.get(f"http://127.0.0.1:{sim_port}/_sim/calls", timeout=5).json()
        assert [(c["site"], c["answer"]) for c in calls] == [(SITE, "accepted")]
        assert (tmp_path / "bridge.db").exists()
        assert "calling the local simulator" in bridge.log()
    finally:
        bridge.stop()
