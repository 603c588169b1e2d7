"""The harness: runs the real `berth server` binary and talks to it the way users do.

Every server binds 127.0.0.1 port 0 and keeps its state in a pytest tmp dir, so tests can run in
parallel. Three ways in:
  * boto3 (`server.client()`), retries disabled so a server error is never masked by a retry;
  * the real AWS CLI v2 (`server.aws(...)`), always /usr/bin/aws;
  * raw signed HTTP (`server.raw(...)`), to send bodies and headers no SDK would.
"""

import configparser
import datetime
import http.client
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import types
from unittest import mock

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BERTH_BIN = os.environ.get("BERTH_BIN", os.path.join(REPO, "build", "apps", "berth", "berth"))
AWS_CLI = "/usr/bin/aws"
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
ACCOUNT = "123456789012"
REGION = "us-east-1"

# How long the server may take to print its endpoint line; startup is milliseconds, the margin
# covers a loaded 2-core CI box.
START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 20
_LISTEN_RE = re.compile(r"^berth server listening on (http://(127\.0\.0\.1):(\d+))$")


def free_port():
    """A TCP port free on 127.0.0.1 right now (for listeners the test creates)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(what, pred, timeout=90, every=0.5):
    """Polls `pred` until it returns something truthy (returned); TimeoutError after `timeout`."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)


def cluster_arn(name, region=REGION, account=ACCOUNT):
    return f"arn:aws:ecs:{region}:{account}:cluster/{name}"


def task_definition_arn(family, revision):
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}"


def read_profiles(path):
    """{profile: (access_key_id, secret_access_key)} from a shared-credentials file."""
    parser = configparser.ConfigParser()
    parser.read(path)
    return {
        s: (parser[s]["aws_access_key_id"].strip(), parser[s]["aws_secret_access_key"].strip())
        for s in parser.sections()
        if "aws_access_key_id" in parser[s]
    }


class RawResponse:
    """An HTTP response read off the wire: status, lower-cased headers, body, parsed JSON."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    @property
    def type(self):
        return (self.json or {}).get("__type")

    @property
    def message(self):
        j = self.json or {}
        return j.get("message", j.get("Message", ""))

    def __repr__(self):
        return f"RawResponse({self.status}, {self.headers!r}, {self.body[:500]!r})"


def sign(host, akid, secret, body, *, action=None, path="/", headers=None, region=REGION,
         service="ecs", skew=None):
    """Signs a POST with botocore's own SigV4 signer. Returns (path, headers dict).

    `skew` (a timedelta) signs as if the clock were that far off, by patching the signer's clock.
    """
    h = {"Content-Type": "application/x-amz-json-1.1", "Host": host}
    if action is not None:
        h["X-Amz-Target"] = f"{TARGET_PREFIX}.{action}"
    h.update(headers or {})
    url = f"http://{host}{path}"
    req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body, headers=h)
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(akid, secret), service, region)
    if skew is None:
        signer.add_auth(req)
    else:
        real = datetime.datetime

        class Shifted(real):
            @classmethod
            def utcnow(cls):
                return real.utcnow() + skew

        fake = types.SimpleNamespace(datetime=Shifted, timedelta=datetime.timedelta)
        with mock.patch.object(botocore.auth, "datetime", fake):
            signer.add_auth(req)
    return path, dict(req.headers.items())


def send(host, port, method, path, headers, body, timeout=30):
    """Sends one request on a fresh connection exactly as given and reads the response."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        if body is not None and not any(k.lower() == "content-length" for k in headers):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return RawResponse(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


class BerthServer:
    """One `berth server` process on 127.0.0.1:0 with its own data dir.

    `restart(same_port=True)` brings it back on the port it had, as a crashed server restarted by
    its supervisor would be, so clients that hold the endpoint (agents) can find it again.
    """

    def __init__(self, workdir, *, credentials=None, region=None, account_id=None, extra_args=()):
        self.workdir = str(workdir)
        self.data_dir = os.path.join(self.workdir, "data")
        self._credentials_arg = credentials
        self.region = region or REGION
        self.account_id = account_id or ACCOUNT
        self.extra_args = list(extra_args)
        self.proc = None
        self.listen = "127.0.0.1:0"
        self.endpoint = self.host = None
        self.port = None
        self.starts = 0
        self._lines = None
        self._pump = None
        self._clients = []

    # ---- process control

    @property
    def credentials_file(self):
        return self._credentials_arg or os.path.join(self.data_dir, "credentials")

    def command(self):
        cmd = [BERTH_BIN, "server", "--listen", self.listen, "--data-dir", self.data_dir]
        if self._credentials_arg:
            cmd += ["--credentials", self._credentials_arg]
        if self.region != REGION:
            cmd += ["--region", self.region]
        if self.account_id != ACCOUNT:
            cmd += ["--account-id", self.account_id]
        return cmd + self.extra_args

    def start(self):
        assert self.proc is None, "already running"
        if not os.access(BERTH_BIN, os.X_OK):
            pytest.fail(f"berth binary not found at {BERTH_BIN} (set BERTH_BIN)")
        self.starts += 1
        log = open(os.path.join(self.workdir, f"server-{self.starts}.stderr"), "wb")
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        lines = queue.Queue()
        self._lines = lines

        def pump(stream):  # keeps the pipe drained so the server never blocks on stdout
            for raw in iter(stream.readline, b""):
                lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
            lines.put(None)

        self._pump = threading.Thread(target=pump, args=(self.proc.stdout,), daemon=True)
        self._pump.start()
        try:
            first = lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            pytest.fail(f"berth server printed nothing within {START_TIMEOUT_S}s: {self.stderr()}")
        m = _LISTEN_RE.match(first or "")
        if not m:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            pytest.fail(f"unexpected first stdout line {first!r}; stderr: {self.stderr()}")
        self.endpoint, self.host, self.port = m.group(1), f"{m.group(2)}:{m.group(3)}", int(m.group(3))
        return self

    def stderr(self):
        path = os.path.join(self.workdir, f"server-{self.starts}.stderr")
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def stop(self, kill9=False):
        """SIGTERM (returns the exit code) or SIGKILL; the data dir stays."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGKILL if kill9 else signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"berth server did not exit within {STOP_TIMEOUT_S}s of SIGTERM")
        self._pump.join(timeout=STOP_TIMEOUT_S)  # EOF follows the exit
        self.proc.stdout.close()
        self.proc = None
        self.close_clients()
        return rc

    @property
    def proxy_pid_file(self):
        """The pid file of the HAProxy master the server supervises (it outlives the server)."""
        return os.path.join(self.data_dir, "haproxy", "haproxy.pid")

    def proxy_pid(self):
        try:
            with open(self.proxy_pid_file) as f:
                pid = int(f.read().split()[0])
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError, IndexError):
            return None

    def stop_proxy(self):
        """Stops the HAProxy the server started, if any (servers leave it running on purpose)."""
        pid = self.proxy_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def restart(self, kill9=False, same_port=False):
        rc = self.stop(kill9=kill9)
        if not kill9:
            assert rc == 0, f"graceful stop exited {rc}: {self.stderr()}"
        if same_port:
            self.listen = f"127.0.0.1:{self.port}"
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- clients

    def keys(self, profile="berth"):
        return read_profiles(self.credentials_file)[profile]

    def client(self, service="ecs", profile="berth", keys=None, **config):
        akid, secret = keys or self.keys(profile)
        cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"},
                                     connect_timeout=10, read_timeout=60, **config)
        client = boto3.session.Session(aws_access_key_id=akid, aws_secret_access_key=secret,
                                       region_name=self.region).client(
            service, endpoint_url=self.endpoint, config=cfg)
        self._clients.append(client)
        return client

    def close_clients(self):
        """Closes the pooled connections of every client made so far (they die with the server)."""
        for c in self._clients:
            c.close()
        self._clients = []

    def aws_env(self, profile="berth"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "AWS_PAGER": "",
            "AWS_SHARED_CREDENTIALS_FILE": self.credentials_file,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_PROFILE": profile,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "HOME": self.workdir,  # no ~/.aws of whoever runs the tests
        })
        return env

    def aws(self, *args, profile="berth", cwd=None):
        """Runs `/usr/bin/aws ARGS --endpoint-url E --output json`: (rc, parsed JSON or stderr)."""
        cmd = [AWS_CLI, *args, "--endpoint-url", self.endpoint, "--output", "json"]
        p = subprocess.run(cmd, env=self.aws_env(profile), capture_output=True, text=True,
                           timeout=120, cwd=cwd or self.workdir)
        if p.returncode != 0:
            return p.returncode, p.stderr
        return 0, json.loads(p.stdout) if p.stdout.strip() else {}

    def raw(self, action, body, *, headers=None, profile="berth", keys=None, path="/",
            sign_request=True, mutate=None, skew=None):
        """POSTs `body` (dict → JSON, str/bytes as is) signed by botocore; returns RawResponse.

        `mutate(path, headers, body) -> (path, headers, body)` runs after signing.
        """
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        if sign_request:
            akid, secret = keys or self.keys(profile)
            path, hdrs = sign(self.host, akid, secret, body, action=action, path=path,
                              headers=headers, region=self.region, skew=skew)
        else:
            hdrs = {"Content-Type": "application/x-amz-json-1.1", "Host": self.host}
            if action is not None:
                hdrs["X-Amz-Target"] = f"{TARGET_PREFIX}.{action}"
            hdrs.update(headers or {})
        if mutate is not None:
            path, hdrs, body = mutate(path, hdrs, body)
        return send("127.0.0.1", self.port, "POST", path, hdrs, body)


# ---- request builders shared by the test modules

def identity_document(instance_id, az="us-east-1a", instance_type="t3.medium", image_id="ami-0abc"):
    return json.dumps({"instanceId": instance_id, "availabilityZone": az, "region": REGION,
                       "instanceType": instance_type, "imageId": image_id,
                       "accountId": ACCOUNT, "privateIp": "10.0.0.7"})


def total_resources(cpu=2048, memory=3942, ports=("22", "2375", "2376", "51678", "51679"),
                    udp_ports=()):
    return [
        {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
        {"name": "PORTS", "type": "STRINGSET", "stringSetValue": list(ports)},
        {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": list(udp_ports)},
    ]


VERSION_INFO = {"agentVersion": "1.70.2", "agentHash": "a1b2c3d4",
                "dockerVersion": "DockerVersion: 20.10.23"}


def register_instance(client, cluster, instance_id="i-0123456789abcdef0", **kw):
    args = dict(cluster=cluster, instanceIdentityDocument=identity_document(instance_id),
                totalResources=total_resources(), versionInfo=VERSION_INFO)
    args.update(kw)
    return client.register_container_instance(**args)["containerInstance"]


def simple_task_definition(family, **kw):
    td = {"family": family,
          "containerDefinitions": [{"name": "app", "image": "busybox:latest", "memory": 64}]}
    td.update(kw)
    return td


def is_subset(sent, got, path="$"):
    """Asserts every member of `sent` comes back in `got` unchanged; `got` may add defaults."""
    if isinstance(sent, dict):
        assert isinstance(got, dict), f"{path}: expected an object, got {got!r}"
        for k, v in sent.items():
            assert k in got, f"{path}.{k} missing from the response: {got!r}"
            is_subset(v, got[k], f"{path}.{k}")
    elif isinstance(sent, list):
        assert isinstance(got, list) and len(got) == len(sent), f"{path}: {sent!r} != {got!r}"
        for i, (a, b) in enumerate(zip(sent, got)):
            is_subset(a, b, f"{path}[{i}]")
    else:
        assert sent == got, f"{path}: sent {sent!r}, got {got!r}"
