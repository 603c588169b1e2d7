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
import socket
import subprocess
import threading
import time

import pytest

from berth_harness import BERTH_BIN, REPO

IMAGE = "localhost/berth-busybox:latest"
pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")


def _ping(sock):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(2)
        s.connect(sock)
        s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
        ok = s.recv(64).startswith(b"HTTP/1.")
        s.close()
        return ok
    except OSError:
        return False


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    d = tmp_path_factory.mktemp("podman")
    conf = d / "containers.conf"
    conf.write_text('[engine]\nruntime = "runc"\n\n[containers]\n'
                    'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n')
    env = dict(os.environ, CONTAINERS_CONF=str(conf))
    sock = str(d / "podman.sock")
    log = open(d / "podman.log", "wb")
    proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                            env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.time() + 15
    while not _ping(sock):
        assert time.time() < deadline, "podman service did not answer"
        time.sleep(0.1)
    subprocess.run(["sh", os.path.join(REPO, "tests/runtime/make_busybox_image.sh"), IMAGE],
                   env=env, check=True)
    yield {"sock": sock, "env": env}
    proc.terminate()
    proc.wait(timeout=30)


def podman_cli(podman, *args):
    return subprocess.run(["podman", *args], env=podman["env"], capture_output=True, text=True)


class Agent:
    def __init__(self, server, cluster, podman, workdir):
        self.server, self.cluster, self.podman = server, cluster, podman
        self.data_dir = os.path.join(workdir, "agent")
        self.workdir = workdir
        self.proc = None
        self.arn = None
        self.starts = 0

    def start(self):
        self.starts += 1
        err = open(os.path.join(self.workdir, f"agent-{self.starts}.stderr"), "wb")
        self.proc = subprocess.Popen(
            [BERTH_BIN, "agent", "--server", self.server.endpoint, "--cluster", self.cluster,
             "--credentials", self.server.credentials_file, "--profile", "berth",
             "--data-dir", self.data_dir, "--engine", f"unix://{self.podman['sock']}"],
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l.decode()) for l in self.proc.stdout],
                         daemon=True).start()
        first = lines.get(timeout=30)
        assert first.startswith("berth agent registered "), first
        arn = first.split()[-1]
        assert self.arn in (None, arn), "re-registration must keep the ARN"
        self.arn = arn

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


@pytest.fixture(scope="module")
def cluster(shared_server, podman, tmp_path_factory):
    name = f"agent-{os.getpid()}"
    ecs = shared_server.client()
    ecs.create_cluster(clusterName=name)
    agent = Agent(shared_server, name, podman, str(tmp_path_factory.mktemp("agent")))
    agent.start()
    yield {"name": name, "ecs": ecs, "agent": agent, "podman": podman}
    agent.stop()
    ids = podman_cli(podman, "ps", "-aq", "--filter", f"label=berth.cluster={name}").stdout.split()
    if ids:
        podman_cli(podman, "rm", "-f", "-t", "0", *ids)


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
