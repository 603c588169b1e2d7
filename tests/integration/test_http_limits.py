"""The HTTP listener's limits as a client meets them: body size, slow clients, keep-alive,
many concurrent connections, graceful shutdown."""

import http.client
import json
import socket
import threading
import time

import pytest

from berth_harness import BerthServer, RawResponse, sign

MAX_BODY = 1024
SLOW_MS = 300


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    s = BerthServer(tmp_path_factory.mktemp("limited"), extra_args=[
        "--max-body-bytes", str(MAX_BODY), "--header-timeout-ms", str(SLOW_MS),
        "--body-timeout-ms", str(SLOW_MS)]).start()
    yield s
    assert s.stop() == 0


def padded_body(size):
    """A valid ListClusters body of exactly `size` bytes."""
    base = '{"maxResults": 5}'
    return (base[:-1] + " " * (size - len(base)) + "}").encode()


def read_all(sock, timeout):
    """Reads until EOF or `timeout` seconds; returns what arrived (b"" means closed silently)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_body_at_limit_is_served_and_over_limit_is_413(limited):
    r = limited.raw("ListClusters", padded_body(MAX_BODY))
    assert r.status == 200, r
    for size in (MAX_BODY + 1, 64 * 1024):
        r = limited.raw("ListClusters", padded_body(size))
        assert r.status == 413, r
    assert limited.client().list_clusters()["clusterArns"] == []


def test_stalled_header_gets_408_while_others_are_served(make_server):
    # A header timeout long enough to tell "served meanwhile" from "served after the stall ended".
    timeout_s = 3
    server = make_server(extra_args=["--header-timeout-ms", str(timeout_s * 1000)])
    stalled = socket.create_connection(("127.0.0.1", server.port))
    try:
        started = time.monotonic()
        stalled.sendall(b"POST / HTTP/1.1\r\nHost: " + server.host.encode() + b"\r\nX-Amz-Tar")
        ecs = server.client()
        for i in range(3):
            ecs.create_cluster(clusterName=f"while-stalled-{i}")
        assert time.monotonic() - started < timeout_s * 0.8, "others waited for the stalled client"
        got = read_all(stalled, timeout=timeout_s + 10)
        assert got == b"" or got.startswith(b"HTTP/1.1 408"), got
        assert time.monotonic() - started >= timeout_s * 0.9, "closed before the header timeout"
    finally:
        stalled.close()
    assert len(server.client().list_clusters()["clusterArns"]) == 3


def test_stalled_header_with_short_timeout_gets_408(limited):
    stalled = socket.create_connection(("127.0.0.1", limited.port))
    try:
        stalled.sendall(b"POST / HTTP/1.1\r\nHost: " + limited.host.encode() + b"\r\nX-Amz-Tar")
        got = read_all(stalled, timeout=10)
        assert got == b"" or got.startswith(b"HTTP/1.1 408"), got
    finally:
        stalled.close()
    assert limited.raw("ListClusters", "{}").status == 200


def test_stalled_body_gets_408(limited):
    akid, secret = limited.keys()
    body = b'{"clusterName": "never-finished"}'
    path, headers = sign(limited.host, akid, secret, body, action="CreateCluster")
    s = socket.create_connection(("127.0.0.1", limited.port))
    try:
        head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"Content-Length: {len(body)}\r\n\r\n"
        s.sendall(head.encode() + body[:10])
        got = read_all(s, timeout=10)
        assert got == b"" or got.startswith(b"HTTP/1.1 408"), got
    finally:
        s.close()
    out = limited.client().describe_clusters(clusters=["never-finished"])
    assert out["clusters"] == []


def test_silent_connection_is_closed(limited):
    s = socket.create_connection(("127.0.0.1", limited.port))
    try:
        started = time.monotonic()
        got = read_all(s, timeout=10)
        assert time.monotonic() - started < 9, "an idle new connection was never closed"
        assert got == b"" or got.startswith(b"HTTP/1.1 408"), got
    finally:
        s.close()


def test_keep_alive_serves_many_requests_on_one_connection(shared_server):
    akid, secret = shared_server.keys()
    conn = http.client.HTTPConnection("127.0.0.1", shared_server.port, timeout=10)
    try:
        first_sock = None
        for i in range(6):
            action, body = (("CreateCluster", {"clusterName": f"ka-{i}"}) if i % 2 == 0
                            else ("ListClusters", {}))
            data = json.dumps(body).encode()
            path, headers = sign(shared_server.host, akid, secret, data, action=action)
            conn.request("POST", path, body=data, headers=headers)
            resp = conn.getresponse()
            r = RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
            assert r.status == 200, r
            assert r.headers.get("connection", "keep-alive").lower() != "close", r
            if first_sock is None:
                first_sock = conn.sock
            assert conn.sock is first_sock, "the server closed a keep-alive connection"
    finally:
        conn.close()


def test_hundred_concurrent_clients(shared_server):
    ecs = shared_server.client()
    ecs.create_cluster(clusterName="concurrency")
    akid, secret = shared_server.keys()
    n = 100
    barrier = threading.Barrier(n, timeout=30)
    results = [None] * n

    def worker(i):
        body = json.dumps({"clusters": ["concurrency"], "include": ["STATISTICS"]}).encode()
        path, headers = sign(shared_server.host, akid, secret, body, action="DescribeClusters")
        conn = http.client.HTTPConnection("127.0.0.1", shared_server.port, timeout=60)
        try:
            conn.connect()
            barrier.wait()
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            results[i] = (resp.status, json.loads(resp.read()))
        except Exception as e:  # reported below with the others
            results[i] = ("error", repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    failures = [r for r in results
                if r is None or r[0] != 200 or r[1]["clusters"][0]["clusterName"] != "concurrency"]
    assert failures == [], failures[:5]


def test_sigterm_exits_zero_and_finishes(make_server):
    s = make_server()
    s.client().create_cluster(clusterName="before-term")
    assert s.stop() == 0
    s.start()
    assert s.client().list_clusters()["clusterArns"] == [
        "arn:aws:ecs:us-east-1:123456789012:cluster/before-term"]


def _raw_request(server, action, body, extra_headers=None, chunked=False):
    akid, secret = server.keys()
    path, headers = sign(server.host, akid, secret, body, action=action, headers=extra_headers)
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if chunked:
        head += "Transfer-Encoding: chunked\r\n\r\n"
        return head.encode() + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def _read_responses(sock, count, timeout=10):
    """Reads `count` HTTP responses (with Content-Length) off one socket."""
    sock.settimeout(timeout)
    f = sock.makefile("rb")
    out = []
    for _ in range(count):
        status = f.readline()
        headers = {}
        while True:
            line = f.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        body = f.read(int(headers.get("content-length", "0")))
        out.append((status, headers, body))
    f.close()
    return out


def test_pipelined_requests_are_answered_in_order(shared_server):
    names = [f"pipelined-{i}" for i in range(3)]
    data = b"".join(_raw_request(shared_server, "CreateCluster",
                                 json.dumps({"clusterName": n}).encode()) for n in names)
    s = socket.create_connection(("127.0.0.1", shared_server.port))
    try:
        s.sendall(data)
        responses = _read_responses(s, 3)
    finally:
        s.close()
    assert [r[0].split()[1] for r in responses] == [b"200"] * 3
    assert [json.loads(r[2])["cluster"]["clusterName"] for r in responses] == names


def test_expect_continue_and_chunked_bodies(shared_server):
    s = socket.create_connection(("127.0.0.1", shared_server.port))
    try:
        body = b'{"clusterName": "expect-continue"}'
        req = _raw_request(shared_server, "CreateCluster", body, {"Expect": "100-continue"})
        head, _, _ = req.partition(b"\r\n\r\n")
        s.sendall(head + b"\r\n\r\n")
        s.settimeout(10)
        assert s.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(body)
        (status, _, out), = _read_responses(s, 1)
        assert status.startswith(b"HTTP/1.1 200"), out
        s.sendall(_raw_request(shared_server, "CreateCluster",
                               b'{"clusterName": "chunked-body"}', chunked=True))
        (status, _, out), = _read_responses(s, 1)
        assert status.startswith(b"HTTP/1.1 200"), out
        assert json.loads(out)["cluster"]["clusterName"] == "chunked-body"
    finally:
        s.close()


def test_sigterm_with_idle_keep_alive_connection_exits_promptly(make_server):
    s = make_server()
    conn = socket.create_connection(("127.0.0.1", s.port))
    try:
        conn.sendall(_raw_request(s, "ListClusters", b"{}"))
        (status, _, _), = _read_responses(conn, 1)
        assert status.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert s.stop() == 0
        assert time.monotonic() - started < 5, "an idle keep-alive connection delayed shutdown"
    finally:
        conn.close()


@pytest.mark.parametrize("case", ["chunked-over-limit", "huge-header", "not-http", "bad-length"])
def test_unreadable_requests_get_4xx_and_server_keeps_serving(limited, case):
    if case == "chunked-over-limit":
        data = _raw_request(limited, "ListClusters", padded_body(MAX_BODY * 3), chunked=True)
        want = b"HTTP/1.1 413"
    elif case == "huge-header":  # headers are capped at 16 KiB
        data = b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
        want = b"HTTP/1.1 431"
    elif case == "not-http":  # e.g. a TLS ClientHello sent to the plain-HTTP port
        data = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n"
        want = b"HTTP/1.1 400"
    else:
        data = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"
        want = b"HTTP/1.1 400"
    s = socket.create_connection(("127.0.0.1", limited.port))
    try:
        s.sendall(data)
        got = read_all(s, timeout=10)
    finally:
        s.close()
    assert got.startswith(want), got[:100]
    assert limited.raw("ListClusters", "{}").status == 200
