"""Podman and `berth agent` for integration tests that run real containers.

`podman_service(dir)` starts a Podman Docker-compatible service on a private socket with the runc
CONTAINERS_CONF these hosts need (PLATFORM.md) and builds the busybox test image; conftest.py
wraps it as the module-scoped `podman` fixture. `Agent` runs one `berth agent` process.
"""

import contextlib
import os
import queue
import signal
import socket
import subprocess
import threading
import time

from berth_harness import BERTH_BIN, REPO

IMAGE = "localhost/berth-busybox:latest"


def _ping(sock):  # also used by test_agent.py for its registry test
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


@contextlib.contextmanager
def podman_service(d):
    d.mkdir(parents=True, exist_ok=True)
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
    try:
        yield {"sock": sock, "env": env}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def podman_cli(podman, *args):
    return subprocess.run(["podman", *args], env=podman["env"], capture_output=True, text=True)


class Agent:
    def __init__(self, server, cluster, podman, workdir, extra_args=()):
        self.server, self.cluster, self.podman = server, cluster, podman
        self.extra_args = list(extra_args)
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
             "--data-dir", self.data_dir, "--engine", f"unix://{self.podman['sock']}",
             *self.extra_args],
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

    def pause(self):
        """SIGSTOP: the process and its sockets stay, but it answers nothing (a hung host)."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stderr(self):
        with open(os.path.join(self.workdir, f"agent-{self.starts}.stderr"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.resume()  # a stopped process would not act on SIGTERM
            self.proc.terminate()
            self.proc.wait(timeout=20)


def remove_cluster_containers(podman, name):
    ids = podman_cli(podman, "ps", "-aq", "--filter", f"label=berth.cluster={name}").stdout.split()
    if ids:
        podman_cli(podman, "rm", "-f", "-t", "0", *ids)


