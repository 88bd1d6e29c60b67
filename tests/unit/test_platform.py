"""PlatformClient against canned answers: one test per row of the outcome table."""
import json
import logging

import pytest
import requests
import responses

from bridge.platform import (
    CONNECT_TIMEOUT, READ_TIMEOUT, Accepted, JobServerError, Locked, PlatformClient, QueueFull,
    RateLimited, Rejected, Status, Unknown,
)

BASE = "https://platform.example.test"
TOKEN = "4711:s3cr3t-t0ken-value"
SITE = 123
TRIGGER_URL = f"{BASE}/platform/v2/process/{SITE}"
STATUS_URL = f"{BASE}/platform/v2/sites/{SITE}/status/p-1"

TOO_MANY = {"success": False, "message": "Too many attempts."}
QUEUE_MSG = "Process could not be triggered, a process is already in the current queue"
LOCK_MSG = "Could not trigger the process, a lock is already acquired"
JOB_MSG = "There was an error interacting with the job server"


@pytest.fixture
def client():
    return PlatformClient(BASE + "/", TOKEN)


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def answer(mocked, status, body=None, headers=None, url=TRIGGER_URL, method=responses.POST):
    """Register one canned answer; dicts become JSON, strings go out as they are."""
    kwargs = {"json": body} if isinstance(body, (dict, list)) else {"body": body or ""}
    mocked.add(method, url, status=status, headers=headers or {}, **kwargs)


# --- trigger: the table ---------------------------------------------------------------------

def test_200_with_process_id_is_accepted(client, mocked):
    answer(mocked, 200, {"success": True, "process_id": "abc-1"})
    assert client.trigger(SITE, "import") == Accepted("abc-1")


def test_200_with_legacy_pid_is_accepted(client, mocked):
    answer(mocked, 200, {"success": True, "pid": "old-9"})
    assert client.trigger(SITE, "import") == Accepted("old-9")


def test_numeric_pid_stays_an_opaque_string(client, mocked):
    answer(mocked, 200, {"success": True, "pid": 123})
    outcome = client.trigger(SITE, "import")
    assert outcome == Accepted("123") and isinstance(outcome.process_id, str)


def test_200_without_id_is_accepted_without_id(client, mocked):
    answer(mocked, 200, {"success": True})
    assert client.trigger(SITE, "all") == Accepted(None)


def test_200_with_success_false_is_rejected(client, mocked):
    answer(mocked, 200, {"success": False, "message": "Process could not be triggered"})
    assert client.trigger(SITE, "import") == Rejected(200, message="Process could not be triggered")


def test_429_too_many_attempts_with_retry_header(client, mocked):
    answer(mocked, 429, TOO_MANY, headers={"X-Ratelimit-Retry-After": "1700000300"})
    outcome = client.trigger(SITE, "import")
    assert outcome == RateLimited(1700000300.0, message="Too many attempts.")


def test_429_retry_header_name_in_odd_case(client, mocked):
    answer(mocked, 429, TOO_MANY, headers={"x-RATELIMIT-retry-AFTER": "1700000301"})
    assert client.trigger(SITE, "import").retry_at == 1700000301.0


def test_429_without_retry_header(client, mocked):
    answer(mocked, 429, TOO_MANY)
    assert client.trigger(SITE, "import") == RateLimited(None, message="Too many attempts.")


def test_429_with_unparseable_retry_header(client, mocked):
    answer(mocked, 429, TOO_MANY, headers={"X-Ratelimit-Retry-After": "soon"})
    assert client.trigger(SITE, "import") == RateLimited(None, message="Too many attempts.")


def test_429_queue_full(client, mocked):
    answer(mocked, 429, {"success": False, "message": QUEUE_MSG.upper()})
    assert isinstance(client.trigger(SITE, "import"), QueueFull)


def test_500_lock_already_acquired(client, mocked):
    answer(mocked, 500, {"success": False, "message": LOCK_MSG})
    assert client.trigger(SITE, "import") == Locked(message=LOCK_MSG)


def test_500_job_server(client, mocked):
    answer(mocked, 500, {"success": False, "error": JOB_MSG})
    assert client.trigger(SITE, "import") == JobServerError(message=JOB_MSG)


def test_500_other_message_is_unknown(client, mocked):
    answer(mocked, 500, {"success": False, "message": "Whoops"})
    assert client.trigger(SITE, "import") == Unknown(message="Whoops")


@pytest.mark.parametrize("status, message", [
    (400, "Bad request"), (401, "Invalid authentication token"),
    (403, "You have no rights for this site"), (404, "Site not found"), (422, "Unprocessable"),
])
def test_4xx_is_rejected_permanently(client, mocked, status, message):
    answer(mocked, status, {"success": False, "message": message})
    assert client.trigger(SITE, "import") == Rejected(status, message=message)


@pytest.mark.parametrize("error", [requests.exceptions.ConnectTimeout("connect timed out"),
                                   requests.exceptions.ReadTimeout("read timed out")])
def test_timeout_is_unknown(client, mocked, error):
    mocked.add(responses.POST, TRIGGER_URL, body=error)
    outcome = client.trigger(SITE, "import")
    assert isinstance(outcome, Unknown) and "timeout" in outcome.message.lower()


def test_connection_error_is_unknown(client, mocked):
    mocked.add(responses.POST, TRIGGER_URL, body=requests.exceptions.ConnectionError("refused"))
    assert isinstance(client.trigger(SITE, "import"), Unknown)


def test_502_is_unknown_with_text_message(client, mocked):
    answer(mocked, 502, "<html>Bad Gateway</html>")
    assert client.trigger(SITE, "import") == Unknown(message="<html>Bad Gateway</html>")


def test_non_json_200_is_unknown(client, mocked):
    answer(mocked, 200, "OK")
    assert client.trigger(SITE, "import") == Unknown(message="OK")


@pytest.mark.parametrize("body", [[1, 2], "\"just a string\"", "null", "{\"no\": \"flag\"}"])
def test_json_200_that_says_nothing_is_unknown(client, mocked, body):
    answer(mocked, 200, body)
    assert isinstance(client.trigger(SITE, "import"), Unknown)


def test_non_json_error_body_is_still_classified(client, mocked):
    answer(mocked, 429, "Too many attempts.", headers={"X-Ratelimit-Retry-After": "1700000000"})
    assert client.trigger(SITE, "import") == RateLimited(1700000000.0, message="Too many attempts.")


def test_long_text_body_is_sliced(client, mocked):
    answer(mocked, 503, "x" * 5000)
    assert 0 < len(client.trigger(SITE, "import").message) <= 200


# --- trigger: the request we send -----------------------------------------------------------

def test_request_body_headers_and_timeout(client, mocked):
    answer(mocked, 200, {"success": True, "process_id": "p"})
    client.trigger(SITE, "export", 77)
    sent = mocked.calls[0].request
    assert sent.url == TRIGGER_URL
    assert sent.headers["X-Auth-Token"] == TOKEN
    assert json.loads(sent.body) == {"action": "export", "id": 77}
    assert sent.req_kwargs["timeout"] == (CONNECT_TIMEOUT, READ_TIMEOUT)


def test_action_without_id_sends_action_only(client, mocked):
    answer(mocked, 200, {"success": True, "process_id": "p"})
    client.trigger(SITE, "export-all")
    assert json.loads(mocked.calls[0].request.body) == {"action": "export-all"}


def test_custom_session_and_timeout_are_used(mocked):
    session = requests.Session()
    client = PlatformClient(BASE, TOKEN, session=session, timeout=(1, 2))
    answer(mocked, 200, {"success": True, "process_id": "p"})
    assert client.session is session
    client.trigger(SITE, "import")
    assert mocked.calls[0].request.req_kwargs["timeout"] == (1, 2)


@pytest.mark.parametrize("action, target", [
    ("imprt", None), ("export", None), ("channel", None), ("export", 0), ("channel", "x"),
])
def test_bad_action_or_missing_id_raises_before_any_call(client, mocked, action, target):
    with pytest.raises(ValueError):
        client.trigger(SITE, action, target)
    assert len(mocked.calls) == 0


def test_bad_site_raises(client):
    with pytest.raises(ValueError):
        client.trigger(0, "import")


# --- the token stays secret -----------------------------------------------------------------

def test_token_never_in_repr_logs_or_messages(client, mocked, caplog):
    caplog.set_level(logging.DEBUG)
    answer(mocked, 401, {"success": False, "message": f"Invalid authentication token {TOKEN}"})
    mocked.add(responses.POST, TRIGGER_URL,
               body=requests.exceptions.ConnectionError(f"refused for {TOKEN}"))
    answer(mocked, 200, f"echo {TOKEN}", url=STATUS_URL, method=responses.GET)
    outcomes = [client.trigger(SITE, "import"), client.trigger(SITE, "import"),
                client.status(SITE, "p-1")]
    secret = TOKEN.split(":")[1]
    for text in [repr(client), str(client), caplog.text, *map(repr, outcomes)]:
        assert secret not in text
    assert "Rejected" in caplog.text and "site=123" in caplog.text


def test_one_info_line_per_call(client, mocked, caplog):
    caplog.set_level(logging.INFO, logger="bridge.platform")
    answer(mocked, 200, {"success": True, "process_id": "p"})
    client.trigger(SITE, "channel", 5)
    records = [r for r in caplog.records if r.name == "bridge.platform"]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert "action=channel" in records[0].getMessage()
    assert "Accepted" in records[0].getMessage()


# --- status ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["queued", "running", "success", "failed"])
def test_each_status_value(client, mocked, value):
    answer(mocked, 200, {"success": True, "status": value}, url=STATUS_URL, method=responses.GET)
    result = client.status(SITE, "p-1")
    assert result == value and isinstance(result, Status)
    assert mocked.calls[0].request.headers["X-Auth-Token"] == TOKEN


def test_unknown_process_id_answers_queued(client, mocked):
    url = f"{BASE}/platform/v2/sites/{SITE}/status/never%2Fseen"
    answer(mocked, 200, {"success": True, "status": "queued"}, url=url, method=responses.GET)
    assert client.status(SITE, "never/seen") == Status.QUEUED


@pytest.mark.parametrize("status, body, expected", [
    (200, {"success": True, "status": "exploded"}, Unknown),
    (200, "not json", Unknown),
    (200, {"success": False, "message": "nope"}, Rejected),
    (404, {"success": False, "message": "Site not found"}, Rejected),
    (401, {"success": False, "message": "Invalid authentication token"}, Rejected),
    (429, TOO_MANY, RateLimited),
    (500, {"success": False, "message": "boom"}, Unknown),
    (503, "unavailable", Unknown),
])
def test_status_errors(client, mocked, status, body, expected):
    answer(mocked, status, body, url=STATUS_URL, method=responses.GET)
    assert isinstance(client.status(SITE, "p-1"), expected)


def test_status_timeout_is_unknown(client, mocked):
    mocked.add(responses.GET, STATUS_URL, body=requests.exceptions.ReadTimeout("slow"))
    assert isinstance(client.status(SITE, "p-1"), Unknown)
