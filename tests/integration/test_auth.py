"""SigV4 authentication as the server enforces it on real signed requests."""

import datetime
import os

import pytest

from berth_harness import read_profiles, send, sign

AMZ_JSON = "application/x-amz-json-1.1"


def assert_auth_error(r, type_, words=()):
    assert r.status == 400, r
    assert r.headers.get("content-type") == AMZ_JSON, r
    assert r.headers.get("x-amzn-requestid"), r
    assert r.type == type_, r
    for w in words:
        assert w in r.message, (w, r)


def test_signed_request_is_accepted(shared_server):
    r = shared_server.raw("ListClusters", "{}")
    assert r.status == 200, r


def test_unsigned(shared_server):
    r = shared_server.raw("ListClusters", "{}", sign_request=False)
    assert_auth_error(r, "MissingAuthenticationTokenException")


def test_unknown_access_key(shared_server):
    _, secret = shared_server.keys()
    r = shared_server.raw("ListClusters", "{}", keys=("AKIAUNKNOWNUNKNOWN00", secret))
    assert_auth_error(r, "UnrecognizedClientException", ["security token"])


def test_wrong_secret(shared_server):
    akid, secret = shared_server.keys()
    wrong = ("X" if secret[0] != "X" else "Y") + secret[1:]
    r = shared_server.raw("ListClusters", "{}", keys=(akid, wrong))
    assert_auth_error(r, "InvalidSignatureException", ["signature"])


def flip(s):
    """Changes one character of a str/bytes value in the middle."""
    i = len(s) // 2
    if isinstance(s, bytes):
        return s[:i] + bytes([s[i] ^ 0x01]) + s[i + 1:]
    return s[:i] + chr(ord(s[i]) ^ 0x01) + s[i + 1:]


def _tamper_header(name):
    def mutate(path, headers, body):
        headers = dict(headers)
        headers[name] = flip(headers[name])
        return path, headers, body
    return mutate


def test_tampered_signed_header(shared_server):
    r = shared_server.raw("ListClusters", "{}", headers={"X-Berth-Test": "hello-world"},
                          mutate=_tamper_header("X-Berth-Test"))
    assert_auth_error(r, "InvalidSignatureException")


def test_tampered_date_header(shared_server):
    def mutate(path, headers, body):
        headers = dict(headers)
        d = headers["X-Amz-Date"]  # 20261125T081500Z: move the seconds by one
        sec = int(d[13:15])
        headers["X-Amz-Date"] = d[:13] + f"{(sec + 1) % 60:02d}" + d[15:]
        return path, headers, body
    r = shared_server.raw("ListClusters", "{}", mutate=mutate)
    assert_auth_error(r, "InvalidSignatureException")


def test_query_string_is_signed(shared_server):
    ok = shared_server.raw("ListClusters", "{}", path="/?x=1&trace=abcdef&empty=&sp=a%20b")
    assert ok.status == 200, ok

    def mutate(path, headers, body):
        return path.replace("abcdef", "abcdeg"), headers, body
    r = shared_server.raw("ListClusters", "{}", path="/?x=1&trace=abcdef&empty=&sp=a%20b", mutate=mutate)
    assert_auth_error(r, "InvalidSignatureException")


def test_tampered_body(shared_server):
    body = '{"clusterName": "tamper-me"}'

    def mutate(path, headers, b):
        return path, headers, b.replace(b"tamper-me", b"tamper-mf")
    r = shared_server.raw("CreateCluster", body, mutate=mutate)
    assert_auth_error(r, "InvalidSignatureException")
    out = shared_server.client().describe_clusters(clusters=["tamper-me", "tamper-mf"])
    assert out["clusters"] == []  # neither name was created


def test_target_header_is_signed(shared_server):
    def mutate(path, headers, body):
        headers = dict(headers)
        headers["X-Amz-Target"] = headers["X-Amz-Target"].replace("ListClusters",
                                                                  "CreateCluster")
        return path, headers, body
    r = shared_server.raw("ListClusters", "{}", mutate=mutate)
    assert_auth_error(r, "InvalidSignatureException")


def test_six_minutes_in_the_past_is_expired(shared_server):
    r = shared_server.raw("ListClusters", "{}", skew=datetime.timedelta(minutes=-6))
    assert_auth_error(r, "InvalidSignatureException", ["Signature expired"])


def test_six_minutes_in_the_future_is_refused(shared_server):
    r = shared_server.raw("ListClusters", "{}", skew=datetime.timedelta(minutes=6))
    # AWS words this case "Signature not yet current: <date> is still later than ...".
    assert_auth_error(r, "InvalidSignatureException")
    assert "Signature expired" in r.message or "Signature not yet current" in r.message, r


@pytest.mark.parametrize("minutes", [-4, 4])
def test_four_minutes_skew_is_accepted(shared_server, minutes):
    r = shared_server.raw("ListClusters", "{}", skew=datetime.timedelta(minutes=minutes))
    assert r.status == 200, r


def test_wrong_region_scope(shared_server):
    akid, secret = shared_server.keys()
    path, headers = sign(shared_server.host, akid, secret, b"{}", action="ListClusters",
                         region="eu-west-1")
    r = send("127.0.0.1", shared_server.port, "POST", path, headers, b"{}")
    assert_auth_error(r, "InvalidSignatureException", ["region"])


def test_user_supplied_credentials_file_with_two_profiles(make_server, tmp_path):
    creds = tmp_path / "creds.ini"
    creds.write_text(
        "[alice]\naws_access_key_id = AKIAALICE00000000001\n"
        "aws_secret_access_key = aliceSecretKey000000000000000000000000001\n\n"
        "[bob]\naws_access_key_id = AKIABOB0000000000002\n"
        "aws_secret_access_key = bobSecretKey00000000000000000000000000002\n")
    s = make_server(credentials=str(creds))
    assert set(read_profiles(s.credentials_file)) == {"alice", "bob"}
    a = s.client(profile="alice")
    b = s.client(profile="bob")
    a.create_cluster(clusterName="from-alice")
    b.create_cluster(clusterName="from-bob")
    assert len(a.list_clusters()["clusterArns"]) == 2
    assert len(b.list_clusters()["clusterArns"]) == 2
    rc, out = s.aws("ecs", "list-clusters", profile="bob")
    assert rc == 0 and len(out["clusterArns"]) == 2, out
    # The user-supplied file is used as is: no generated credentials appear in the data dir.
    assert not os.path.exists(os.path.join(s.data_dir, "credentials"))
    # A key pair not in the file is refused.
    r = s.raw("ListClusters", "{}", keys=("AKIACAROL00000000003", "x" * 40))
    assert_auth_error(r, "UnrecognizedClientException")


def test_generated_credentials_survive_restart(server):
    before = server.keys()
    server.client().create_cluster(clusterName="persist")
    server.restart()
    assert server.keys() == before
    assert server.client().list_clusters()["clusterArns"] == [
        "arn:aws:ecs:us-east-1:123456789012:cluster/persist"]
