"""`berth agent` against real Podman: tasks become containers, and the agent survives restarts.

One podman service per module on a private socket, with the runc CONTAINERS_CONF these hosts need
(PLATFORM.md); one agent for the module's cluster. Every container the module starts carries the
berth.cluster label and is removed at the end. Skipped only when podman is not installed.
"""

import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from agent_harness import IMAGE, Agent, _ping, podman_cli, remove_cluster_containers
from berth_harness import BERTH_BIN, REPO
pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")


@pytest.fixture(scope="module")
def cluster(shared_server, podman, tmp_path_factory):
    name = f"agent-{os.getpid()}"
    ecs = shared_server.client()
    ecs.create_cluster(clusterName=name)
    agent = Agent(shared_server, name, podman, str(tmp_path_factory.mktemp("agent")))
    agent.start()
    yield {"name": name, "ecs": ecs, "agent": agent, "podman": podman}
    agent.stop()
    remove_cluster_containers(podman, name)


@pytest.fixture
def private_cluster(make_server, podman, tmp_path_factory):
    """private_cluster(*server_args, engine=, agent_args=): a server of its own with one agent,
    for tests that kill, restart or reconfigure the server or the agent. Torn down (agent, then
    containers) before the server."""
    made = []

    def make(*server_args, engine=None, agent_args=()):
        server = make_server(extra_args=list(server_args))
        name = f"agent-priv-{len(made)}-{os.getpid()}"
        ecs = server.client()
        ecs.create_cluster(clusterName=name)
        agent = Agent(server, name, engine or podman, str(tmp_path_factory.mktemp("agent")),
                      extra_args=agent_args)
        agent.start()
        c = {"name": name, "ecs": ecs, "agent": agent, "podman": podman, "server": server}
        made.append(c)
        return c

    yield make
    for c in made:
        c["agent"].stop()
        remove_cluster_containers(podman, c["name"])


def register(ecs, family, containers, **kw):
    for c in containers:
        c.setdefault("image", IMAGE)
        c.setdefault("memory", 32)
    return ecs.register_task_definition(family=family, containerDefinitions=containers,
                                        **kw)["taskDefinition"]["taskDefinitionArn"]


def run(c, td):
    r = c["ecs"].run_task(cluster=c["name"], taskDefinition=td)
    assert not r["failures"], r["failures"]
    return r["tasks"][0]["taskArn"]


def wait_task(c, arn, pred, timeout=30):
    deadline = time.time() + timeout
    while True:
        t = c["ecs"].describe_tasks(cluster=c["name"], tasks=[arn])["tasks"][0]
        if pred(t):
            return t
        assert time.time() < deadline, f"timed out; last: {json.dumps(t, default=str)[:1500]}"
        time.sleep(0.2)


def running(t):
    return t["lastStatus"] == "RUNNING"


def stopped(t):
    return t["lastStatus"] == "STOPPED"


def agent_connected(c):
    return c["ecs"].describe_container_instances(
        cluster=c["name"], containerInstances=[c["agent"].arn])["containerInstances"][0]["agentConnected"]


def wait_connected(c, want, timeout):
    deadline = time.time() + timeout
    while agent_connected(c) != want:
        assert time.time() < deadline, f"agentConnected did not become {want} within {timeout}s"
        time.sleep(0.2)


def container_state(c, runtime_id):
    out = podman_cli(c["podman"], "inspect", "--format", "{{.State.Status}} {{.State.StartedAt}}", runtime_id)
    return out.stdout.strip() if out.returncode == 0 else None


WEB = ["sh", "-c", "echo hello-berth > /www/index.html && exec httpd -f -p 80 -h /www"]


def test_dynamic_port_answers_http(cluster, unique):
    td = register(cluster["ecs"], unique("web"), [{
        "name": "web", "command": WEB, "stopTimeout": 2,
        "portMappings": [{"containerPort": 80, "hostPort": 0}]}])
    arn = run(cluster, td)
    t = wait_task(cluster, arn, running)
    nb = t["containers"][0]["networkBindings"][0]
    assert nb["containerPort"] == 80 and nb["hostPort"] > 0
    assert t["containers"][0]["runtimeId"]
    body = None
    for _ in range(50):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", nb["hostPort"], timeout=2)
            conn.request("GET", "/")
            body = conn.getresponse().read()
            break
        except OSError:
            time.sleep(0.1)
    assert body == b"hello-berth\n"
    cluster["ecs"].stop_task(cluster=cluster["name"], task=arn)
    wait_task(cluster, arn, stopped)


def test_essential_exit_stops_task(cluster, unique):
    td = register(cluster["ecs"], unique("exit"), [
        {"name": "main", "command": ["sh", "-c", "sleep 1; exit 7"]},
        {"name": "side", "essential": False, "command": ["sleep", "300"], "stopTimeout": 1}])
    arn = run(cluster, td)
    t = wait_task(cluster, arn, stopped)
    assert t["stopCode"] == "EssentialContainerExited"
    by = {k["name"]: k for k in t["containers"]}
    assert by["main"]["exitCode"] == 7
    assert by["side"]["lastStatus"] == "STOPPED"


def test_depends_on_order(cluster, unique):
    td = register(cluster["ecs"], unique("deps"), [
        {"name": "init", "essential": False, "command": ["sh", "-c", "date +%s.%N; sleep 1"]},
        {"name": "app", "command": ["sleep", "300"], "stopTimeout": 1,
         "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]}])
    arn = run(cluster, td)
    t = wait_task(cluster, arn, running)
    by = {k["name"]: k for k in t["containers"]}
    assert by["init"]["exitCode"] == 0
    fin = podman_cli(cluster["podman"], "inspect", "--format", "{{.State.FinishedAt.Unix}}", by["init"]["runtimeId"]).stdout
    st = podman_cli(cluster["podman"], "inspect", "--format", "{{.State.StartedAt.Unix}}", by["app"]["runtimeId"]).stdout
    assert int(st) >= int(fin), "app started only after init completed"
    cluster["ecs"].stop_task(cluster=cluster["name"], task=arn)
    wait_task(cluster, arn, stopped)


def test_failing_health_check_is_unhealthy(cluster, unique):
    td = register(cluster["ecs"], unique("health"), [{
        "name": "web", "command": ["sleep", "300"], "stopTimeout": 1,
        "healthCheck": {"command": ["CMD-SHELL", "exit 1"], "interval": 5, "retries": 1, "timeout": 2}}])
    arn = run(cluster, td)
    t = wait_task(cluster, arn, lambda t: t.get("healthStatus") == "UNHEALTHY", timeout=30)
    assert t["containers"][0]["healthStatus"] == "UNHEALTHY"
    cluster["ecs"].stop_task(cluster=cluster["name"], task=arn)
    wait_task(cluster, arn, stopped)


def test_stop_task_honours_stop_timeout(cluster, unique):
    # sleep as PID 1 ignores SIGTERM: the stop must wait stopTimeout, then SIGKILL (137).
    td = register(cluster["ecs"], unique("stop"), [{"name": "s", "command": ["sleep", "300"], "stopTimeout": 3}])
    arn = run(cluster, td)
    wait_task(cluster, arn, running)
    t0 = time.time()
    cluster["ecs"].stop_task(cluster=cluster["name"], task=arn, reason="test")
    t = wait_task(cluster, arn, stopped)
    took = time.time() - t0
    assert 2.5 <= took < 15, took
    assert t["containers"][0]["exitCode"] == 137
    assert t["stopCode"] == "UserInitiated"


def test_agent_kill9_restart_readopts(cluster, unique):
    td = register(cluster["ecs"], unique("readopt"), [{"name": "s", "command": ["sleep", "300"], "stopTimeout": 1}])
    arns = [run(cluster, td) for _ in range(2)]
    ids = {}
    for a in arns:
        t = wait_task(cluster, a, running)
        ids[a] = t["containers"][0]["runtimeId"]
    before = {i: container_state(cluster, i) for i in ids.values()}
    victim = arns[1]
    agent = cluster["agent"]
    agent.kill9()
    # Meanwhile the server stops one task: the restarted agent must stop its container.
    cluster["ecs"].stop_task(cluster=cluster["name"], task=victim)
    agent.start()
    t = wait_task(cluster, victim, stopped)
    assert t["containers"][0]["runtimeId"] == ids[victim]
    t = wait_task(cluster, arns[0], running)
    assert t["containers"][0]["runtimeId"] == ids[arns[0]]
    assert container_state(cluster, ids[arns[0]]) == before[ids[arns[0]]], "not restarted"
    cluster["ecs"].stop_task(cluster=cluster["name"], task=arns[0])
    wait_task(cluster, arns[0], stopped)


def test_agent_disconnect_shows_agent_connected_false(cluster):
    ecs, agent = cluster["ecs"], cluster["agent"]

    def connected():
        return ecs.describe_container_instances(cluster=cluster["name"], containerInstances=[agent.arn])[
            "containerInstances"][0]["agentConnected"]

    assert connected()
    agent.stop()
    deadline = time.time() + 40
    while connected():
        assert time.time() < deadline
        time.sleep(0.5)
    agent.start()
    deadline = time.time() + 20
    while not connected():
        assert time.time() < deadline
        time.sleep(0.2)


def test_server_kill9_restart_while_tasks_run(private_cluster, unique):
    c = private_cluster()
    server, agent = c["server"], c["agent"]
    td = register(c["ecs"], unique("srvrestart"), [{
        "name": "web", "command": WEB, "stopTimeout": 1,
        "portMappings": [{"containerPort": 80, "hostPort": 0}]}])
    arns = [run(c, td) for _ in range(2)]
    before = {}
    for a in arns:
        k = wait_task(c, a, running)["containers"][0]
        before[a] = (k["runtimeId"], k["networkBindings"], container_state(c, k["runtimeId"]))
    port = server.port

    server.stop(kill9=True)
    time.sleep(1.5)  # the agent loses the channel and retries, backing off, while nobody listens
    server.restart(kill9=True, same_port=True)
    assert server.port == port
    c["ecs"] = server.client()

    wait_connected(c, True, timeout=20)
    assert agent.proc.poll() is None, "the agent must ride out a server restart"
    assert "berth agent: connect:" in agent.stderr(), "the agent retried while the server was down"
    for a, (rid, bindings, state) in before.items():
        t = wait_task(c, a, running)
        k = t["containers"][0]
        assert k["runtimeId"] == rid and k["networkBindings"] == bindings
        assert container_state(c, rid) == state, "the container was not restarted"
    # The channel is really back: a StopTask made after the restart reaches the container.
    c["ecs"].stop_task(cluster=c["name"], task=arns[0], reason="after restart")
    t = wait_task(c, arns[0], stopped)
    assert t["stopCode"] == "UserInitiated"
    gone = container_state(c, before[arns[0]][0])
    assert gone is None or gone.startswith("exited"), gone
    assert container_state(c, before[arns[1]][0]) == before[arns[1]][2]


def test_missed_heartbeats_mark_agent_disconnected(private_cluster, unique):
    # A 3 s window (pings every 1 s) keeps the test short; the default is 30 s.
    c = private_cluster("--agent-heartbeat-timeout-ms", "3000")
    agent = c["agent"]
    td = register(c["ecs"], unique("hb"), [{"name": "s", "command": ["sleep", "300"], "stopTimeout": 1}])
    arn = run(c, td)
    rid = wait_task(c, arn, running)["containers"][0]["runtimeId"]
    state = container_state(c, rid)
    assert agent_connected(c)

    agent.pause()
    try:
        t0 = time.time()
        wait_connected(c, False, timeout=3 + 5)
        # Not at once: only after ~3 s of silence (pings every 1 s, swept every 250 ms).
        assert time.time() - t0 >= 1.5, "dropped before the heartbeat window ran out"
        assert container_state(c, rid) == state, "the task keeps running on a disconnected agent"
        assert c["ecs"].describe_tasks(cluster=c["name"], tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING"
    finally:
        agent.resume()
    wait_connected(c, True, timeout=15)
    t = wait_task(c, arn, running)
    assert t["containers"][0]["runtimeId"] == rid
    assert container_state(c, rid) == state, "reconciled, not restarted"
    c["ecs"].stop_task(cluster=c["name"], task=arn)
    wait_task(c, arn, stopped)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bcrypt(password):
    """A bcrypt hash (the only htpasswd format docker-registry accepts) via glibc's crypt(3)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            pytest.skip("no crypt module to make a bcrypt htpasswd")
    h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    if not h or not h.startswith("$2"):
        pytest.skip("crypt(3) here cannot make bcrypt hashes")
    return h


@pytest.fixture
def private_registry(podman, tmp_path):
    """docker-registry on 127.0.0.1 with htpasswd auth holding the busybox image, and a Podman
    service of its own whose registries.conf marks that registry insecure (plain HTTP)."""
    if shutil.which("docker-registry") is None or shutil.which("skopeo") is None:
        pytest.skip("docker-registry or skopeo is not installed")
    port, user, password = _free_port(), "berth", "s3cret-registry"
    host = f"127.0.0.1:{port}"
    (tmp_path / "htpasswd").write_text(f"{user}:{_bcrypt(password)}\n")
    (tmp_path / "registry.yml").write_text(
        f"version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {tmp_path / 'registry-data'}\nhttp:\n  addr: {host}\n"
        f"auth:\n  htpasswd:\n    realm: berth\n    path: {tmp_path / 'htpasswd'}\n")
    reg_log = tmp_path / "registry.log"
    with open(reg_log, "wb") as log:
        registry = subprocess.Popen(["docker-registry", "serve", str(tmp_path / "registry.yml")],
                                    stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')
    env = dict(podman["env"], CONTAINERS_REGISTRIES_CONF=str(conf))
    sock = str(tmp_path / "podman.sock")
    with open(tmp_path / "podman.log", "wb") as log:
        service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                                   env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    image = f"{host}/berth-busybox:auth"
    try:
        deadline = time.time() + 15
        while not (_ping(sock) and _registry_up(host)):
            assert time.time() < deadline, f"registry or podman did not come up: {reg_log.read_text()[-2000:]}"
            time.sleep(0.1)
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds",
                        f"{user}:{password}", f"containers-storage:{IMAGE}", f"docker://{image}"],
                       env=env, check=True, capture_output=True, timeout=60)
        yield {"image": image, "host": host, "user": user, "password": password, "log": reg_log,
               "engine": {"sock": sock, "env": env}}
    finally:
        subprocess.run(["podman", "rmi", "-f", image], env=env, capture_output=True)
        service.terminate()
        registry.terminate()
        service.wait(timeout=30)
        registry.wait(timeout=30)


def _registry_up(host):
    try:
        conn = http.client.HTTPConnection(*host.split(":"), timeout=1)
        conn.request("GET", "/v2/")
        return conn.getresponse().status == 401  # up, and asking for credentials
    except OSError:
        return False


def test_registry_auth_pulls_private_image(private_registry, private_cluster, shared_server,
                                           tmp_path, unique):
    reg = private_registry
    # The registry really wants credentials: an anonymous pull is refused.
    anon = subprocess.run(["podman", "pull", "-q", reg["image"]], env=reg["engine"]["env"],
                          capture_output=True, text=True, timeout=60)
    assert anon.returncode != 0 and "unauthorized" in anon.stderr.lower(), anon.stderr

    creds = tmp_path / "registry-creds"
    creds.write_text(f"{reg['user']}:{reg['password']}\n")
    creds.chmod(0o644)
    # Refused while anyone may read the password.
    loose = subprocess.run(
        [BERTH_BIN, "agent", "--server", shared_server.endpoint, "--credentials",
         shared_server.credentials_file, "--data-dir", str(tmp_path / "loose"),
         "--engine", f"unix://{reg['engine']['sock']}", "--registry-auth", f"{reg['host']}={creds}"],
        capture_output=True, text=True, timeout=30)
    assert loose.returncode == 2 and "0600" in loose.stderr, loose.stderr
    creds.chmod(0o600)

    c = private_cluster(engine=reg["engine"], agent_args=["--registry-auth", f"{reg['host']}={creds}"])
    td = register(c["ecs"], unique("private"), [{
        "name": "s", "image": reg["image"], "command": ["sleep", "300"], "stopTimeout": 1}])
    arn = run(c, td)
    t = wait_task(c, arn, lambda t: t["lastStatus"] in ("RUNNING", "STOPPED"), timeout=60)
    k = t["containers"][0]
    assert t["lastStatus"] == "RUNNING", k.get("reason")
    assert k["imageDigest"].startswith("sha256:")
    assert t.get("pullStartedAt") and t.get("pullStoppedAt"), "the agent pulled the image"
    log = reg["log"].read_text()
    assert f"auth.user.name={reg['user']}" in log or f'auth.user.name="{reg["user"]}"' in log, log[-2000:]
    c["ecs"].stop_task(cluster=c["name"], task=arn)
    wait_task(c, arn, stopped)
