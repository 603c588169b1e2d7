"""Acknowledged writes survive kill -9: every write whose response arrived is there after a
restart on the same data dir."""

import http.client
import json
import threading
import time

from berth_harness import cluster_arn, sign, simple_task_definition, task_definition_arn


def test_kill9_right_after_acknowledged_writes(server):
    ecs = server.client()
    ecs.create_cluster(clusterName="durable", tags=[{"key": "k", "value": "v"}])
    ecs.register_task_definition(**simple_task_definition("durable-td"))
    ecs.register_task_definition(**simple_task_definition("durable-td"))
    ecs.deregister_task_definition(taskDefinition="durable-td:1")
    server.restart(kill9=True)

    ecs = server.client()
    c = ecs.describe_clusters(clusters=["durable"], include=["TAGS"])["clusters"][0]
    assert c["status"] == "ACTIVE" and c["tags"] == [{"key": "k", "value": "v"}]
    assert ecs.describe_task_definition(taskDefinition="durable-td:1")["taskDefinition"][
        "status"] == "INACTIVE"
    assert ecs.describe_task_definition(taskDefinition="durable-td")["taskDefinition"][
        "revision"] == 2
    # Revision numbering continues where it stopped.
    assert ecs.register_task_definition(**simple_task_definition("durable-td"))[
        "taskDefinition"]["revision"] == 3


def test_kill9_during_concurrent_writes_keeps_every_acknowledged_write(server):
    akid, secret = server.keys()
    host, port = server.host, server.port
    writers, per_writer = 4, 50
    acked_clusters, acked_tds = [], []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for i in range(per_writer):
                if stop.is_set():
                    return
                if i % 2 == 0:
                    action, body = "CreateCluster", {"clusterName": f"w{w}-c{i}"}
                else:
                    action, body = "RegisterTaskDefinition", simple_task_definition(f"w{w}-td")
                data = json.dumps(body).encode()
                path, headers = sign(host, akid, secret, data, action=action)
                try:
                    conn.request("POST", path, body=data, headers=headers)
                    resp = conn.getresponse()
                    out = json.loads(resp.read())
                except (OSError, http.client.HTTPException, ValueError):
                    return  # the server died under us: this write was not acknowledged
                assert resp.status == 200, out
                with lock:
                    if action == "CreateCluster":
                        acked_clusters.append(out["cluster"]["clusterArn"])
                    else:
                        acked_tds.append(out["taskDefinition"]["taskDefinitionArn"])
        finally:
            conn.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    # Kill once a good share of the writes is acknowledged, while the rest are in flight.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            if len(acked_clusters) + len(acked_tds) >= writers * per_writer // 2:
                break
        time.sleep(0.002)
    server.stop(kill9=True)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    acked = len(acked_clusters) + len(acked_tds)
    assert acked >= writers * per_writer // 2
    print(f"acknowledged before kill -9: {acked} of {writers * per_writer}")

    server.start()
    ecs = server.client()
    listed = set()
    for page in ecs.get_paginator("list_clusters").paginate():
        listed.update(page["clusterArns"])
    missing = set(acked_clusters) - listed
    assert not missing, f"{len(missing)} acknowledged clusters lost: {sorted(missing)[:5]}"
    tds = set()
    for page in ecs.get_paginator("list_task_definitions").paginate():
        tds.update(page["taskDefinitionArns"])
    missing = set(acked_tds) - tds
    assert not missing, f"{len(missing)} acknowledged task definitions lost: {sorted(missing)[:5]}"

    # Revisions of each family were handed out without gaps or repeats among acknowledged ones.
    for w in range(writers):
        revs = sorted(int(a.rsplit(":", 1)[1]) for a in acked_tds if f"/w{w}-td:" in a)
        assert revs == list(range(1, len(revs) + 1)), (w, revs)
    # And the server keeps numbering after the crash.
    nxt = ecs.register_task_definition(**simple_task_definition("w0-td"))["taskDefinition"]
    n0 = sum(1 for a in acked_tds if "/w0-td:" in a)
    assert nxt["revision"] >= n0 + 1
    assert nxt["taskDefinitionArn"] == task_definition_arn("w0-td", nxt["revision"])
    assert cluster_arn("w0-c0") in listed
