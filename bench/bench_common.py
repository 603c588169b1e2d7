"""Shared helpers for Berth's benchmarks: start a server, load its credentials, sign ECS requests.

Used by bench/prepare_wrk.py (wrk scripts for http_bench.sh) and bench/register_latency.py.
Only the Debian interpreter (/usr/bin/python3) is assumed: it has botocore/boto3 (python3-boto3).
Every wait here is bounded; every address is 127.0.0.1.
"""

import configparser
import json
import os
import signal
import subprocess
import time

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"
SERVICE = "ecs"
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
CONTENT_TYPE = "application/x-amz-json-1.1"
PROFILE = "berth"

# The server prints its endpoint as the first stdout line; startup (SQLite open, key file) takes
# milliseconds, so 15 s only matters on a badly overloaded machine.
START_TIMEOUT_S = 15.0
# Graceful shutdown waits for requests in flight (server's shutdown_grace is 10 s).
STOP_TIMEOUT_S = 15.0


def load_credentials(path, profile=PROFILE):
    """Reads the AWS INI file the server writes into its data dir."""
    ini = configparser.ConfigParser()
    if not ini.read(path):
        raise SystemExit(f"cannot read credentials file {path}")
    sec = ini[profile]
    return Credentials(sec["aws_access_key_id"].strip(), sec["aws_secret_access_key"].strip())


def sign(creds, host, action, payload):
    """Returns (headers, body) of a SigV4-signed ECS JSON 1.1 request to http://HOST/.

    `host` must be exactly the Host header the client sends ("127.0.0.1:PORT"): it is signed.
    Signed headers: content-type;host;x-amz-date;x-amz-target — what the AWS CLI signs.
    """
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload, separators=(",", ":"))
    if isinstance(body, str):
        body = body.encode()
    req = AWSRequest(
        method="POST",
        url=f"http://{host}/",
        data=body,
        headers={
            "Host": host,
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": TARGET_PREFIX + action,
        },
    )
    SigV4Auth(creds, SERVICE, REGION).add_auth(req)
    return dict(req.headers.items()), body


def task_definition(family, index=0):
    """A realistic task definition: a web app with a log sidecar, env, health check, limits.

    About 2.5 KB of JSON, similar to what real services register. `index` varies one env value so
    consecutive registrations are not byte-identical.
    """
    env = [{"name": f"APP_SETTING_{i}", "value": f"value-{i}-{'x' * 16}"} for i in range(12)]
    env.append({"name": "BUILD_ID", "value": f"build-{index}"})
    return {
        "family": family,
        "taskRoleArn": "arn:aws:iam::123456789012:role/bench-task-role",
        "executionRoleArn": "arn:aws:iam::123456789012:role/bench-exec-role",
        "networkMode": "bridge",
        "requiresCompatibilities": ["EC2"],
        "cpu": "512",
        "memory": "1024",
        "containerDefinitions": [
            {
                "name": "web",
                "image": "registry.example.internal/team/web-app:1.42.0",
                "cpu": 384,
                "memory": 768,
                "memoryReservation": 512,
                "essential": True,
                "portMappings": [
                    {"containerPort": 8080, "hostPort": 0, "protocol": "tcp"},
                    {"containerPort": 9090, "hostPort": 0, "protocol": "tcp"},
                ],
                "environment": env,
                "command": ["/app/server", "--port", "8080", "--metrics-port", "9090"],
                "healthCheck": {
                    "command": ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/healthz || exit 1"],
                    "interval": 10,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 20,
                },
                "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
                "mountPoints": [{"sourceVolume": "cache", "containerPath": "/var/cache/app"}],
                "dependsOn": [{"containerName": "log-router", "condition": "START"}],
                "logConfiguration": {
                    "logDriver": "json-file",
                    "options": {"max-size": "10m", "max-file": "3"},
                },
                "dockerLabels": {"team": "platform", "service": "web", "tier": "frontend"},
                "stopTimeout": 30,
            },
            {
                "name": "log-router",
                "image": "registry.example.internal/infra/log-router:2.1",
                "cpu": 128,
                "memory": 256,
                "essential": True,
                "environment": [{"name": "LOG_LEVEL", "value": "info"}],
                "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "5m"}},
            },
        ],
        "volumes": [{"name": "cache", "host": {"sourcePath": "/var/cache/bench-web"}}],
        "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}
        ],
        "tags": [{"key": "env", "value": "bench"}, {"key": "owner", "value": "platform"}],
    }


class Server:
    """A berth server on 127.0.0.1:0 in `data_dir`, optionally pinned with taskset."""

    def __init__(self, binary, data_dir, threads=2, cpus=None):
        self.data_dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        self.out_path = os.path.join(data_dir, "..", "server.out")
        self.err_path = os.path.join(data_dir, "..", "server.err")
        cmd = [binary, "server", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
               "--threads", str(threads)]
        if cpus:
            cmd = ["taskset", "-c", cpus] + cmd
        self._out = open(self.out_path, "w")
        self._err = open(self.err_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=self._err)
        self.host = self._wait_for_endpoint()
        self.credentials_path = os.path.join(data_dir, "credentials")

    def _wait_for_endpoint(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"berth exited with {self.proc.returncode}: "
                                 + open(self.err_path).read()[-2000:])
            with open(self.out_path) as f:
                first = f.readline()
            if first.endswith("\n") and "listening on http://" in first:
                return first.strip().split("http://", 1)[1]
            time.sleep(0.05)
        self.stop()
        raise SystemExit("berth did not print its endpoint in time")

    def stop(self):
        """SIGTERM, bounded wait, then SIGKILL as a last resort. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._out.close()
        self._err.close()
        return self.proc.returncode


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list (p in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]
