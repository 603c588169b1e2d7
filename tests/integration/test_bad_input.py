"""Hand-made, correctly signed requests with bad bodies and headers: each gets the right error,
and the server keeps serving."""

import pytest

from berth_harness import send

AMZ_JSON = "application/x-amz-json-1.1"

# (action, body, __type, words the message must contain)
CASES = {
    "malformed-json": ("DescribeClusters", '{"clusters": [', "ClientException", ["JSON"]),
    "body-is-array": ("ListClusters", "[1, 2]", "ClientException", ["JSON object"]),
    "body-is-string": ("ListClusters", '"hello"', "ClientException", ["JSON object"]),
    "wrong-member-type": ("RegisterTaskDefinition",
                          '{"family": 5, "containerDefinitions": []}',
                          "InvalidParameterException", ["family", "type"]),
    "wrong-nested-type": ("RegisterTaskDefinition",
                          '{"family": "f", "containerDefinitions": '
                          '[{"name": "a", "image": "b", "memory": "lots"}]}',
                          "InvalidParameterException", ["containerDefinitions[0].memory"]),
    "missing-required": ("DescribeTaskDefinition", "{}", "InvalidParameterException",
                         ["taskDefinition", "Missing required"]),
    "int-out-of-32-bit-range": ("ListClusters", '{"maxResults": 4294967296}',
                                "InvalidParameterException", ["maxResults", "range"]),
    "negative-int-out-of-range": ("ListClusters", '{"maxResults": -2147483649}',
                                  "InvalidParameterException", ["maxResults"]),
    "unknown-enum": ("DescribeClusters", '{"include": ["BOGUS"]}', "InvalidParameterException",
                     ["include", "BOGUS"]),
    "unknown-enum-nested": ("RegisterTaskDefinition",
                            '{"family": "f", "networkMode": "wormhole", '
                            '"containerDefinitions": [{"name": "a", "image": "b", "memory": 8}]}',
                            "InvalidParameterException", ["networkMode", "wormhole"]),
    "unknown-action": ("Foo", "{}", "UnknownOperationException", ["Foo"]),
}


def check_error(r, status, type_, words=()):
    assert r.status == status, r
    assert r.headers.get("content-type") == AMZ_JSON, r
    assert r.headers.get("x-amzn-requestid"), r
    assert r.type == type_, r
    for w in words:
        assert w in r.message, (w, r)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_request_gets_named_error(shared_server, case):
    action, body, type_, words = CASES[case]
    r = shared_server.raw(action, body)
    check_error(r, 400, type_, words)


def test_missing_target_header(shared_server):
    r = shared_server.raw(None, "{}")
    check_error(r, 400, "UnknownOperationException", ["X-Amz-Target"])


def test_unknown_service_prefix(shared_server):
    r = shared_server.raw(None, "{}", headers={"X-Amz-Target": "DynamoDB_20120810.ListTables"})
    check_error(r, 400, "UnknownOperationException")


def test_empty_body_means_empty_object(shared_server):
    r = shared_server.raw("ListClusters", b"")
    assert r.status == 200, r
    assert "clusterArns" in r.json


def test_success_has_request_id_and_content_type(shared_server):
    ids = set()
    for _ in range(3):
        r = shared_server.raw("ListClusters", "{}")
        assert r.status == 200, r
        assert r.headers.get("content-type") == AMZ_JSON
        ids.add(r.headers["x-amzn-requestid"])
    assert len(ids) == 3  # one id per request


def test_server_keeps_serving_after_bad_requests(shared_server):
    for action, body, _, _ in CASES.values():
        shared_server.raw(action, body)
    shared_server.raw(None, "{}")
    ecs = shared_server.client()
    out = ecs.create_cluster(clusterName="after-bad-input")
    assert out["cluster"]["status"] == "ACTIVE"
    assert shared_server.alive()


def test_get_is_not_an_api_call(shared_server):
    r = send("127.0.0.1", shared_server.port, "GET", "/", {"Host": shared_server.host}, None)
    assert r.status == 405, r
    assert r.headers.get("x-amzn-requestid"), r
    health = send("127.0.0.1", shared_server.port, "GET", "/health",
                  {"Host": shared_server.host}, None)
    assert health.status == 200, health
