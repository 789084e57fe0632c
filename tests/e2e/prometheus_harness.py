"""A real Prometheus server for end-to-end tests (Python 3 stdlib only).

`Prometheus` starts Debian's `prometheus` binary ($PROMETHEUS_BIN, default the one on PATH) on
a free loopback port with a temporary config that scrapes the given targets every second and a
temporary storage folder, waits until it is ready, answers instant queries through its HTTP API
(/api/v1/query), and stops it (SIGTERM, then SIGKILL after a grace period), removing its folder.

Example (the serving e2e test does this against `ferry serve`):

    with Prometheus(["127.0.0.1:%d" % port], job="ferry") as prom:
        # ... send requests ...
        result = prom.wait_for('sum(ferry_requests_total{code="200"})',
                               lambda r: r and float(r[0]["value"][1]) >= 10, deadline=30)

Bounds: `start` waits at most `ready_deadline` seconds, every HTTP call has a timeout, and
`wait_for` polls until its deadline, then raises TimeoutError with the last result. Prometheus
scrapes a new target a few seconds after it starts (its scrape loops are spread over the
interval after an initial delay), so give the first `wait_for` a deadline of ~30 s.

Not thread-safe: one test thread drives one instance. Every instance owns its process and folder.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HTTP_TIMEOUT = 5.0
POLL_INTERVAL = 0.2


class PrometheusError(Exception):
    """Prometheus could not be started, or answered a query with an error."""


def free_loopback_port():
    """A TCP port of 127.0.0.1 free at the time of the call (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_binary():
    """$PROMETHEUS_BIN, else `prometheus` on PATH, else /usr/bin/prometheus; None if none exists."""
    candidate = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
    return candidate if os.access(candidate, os.X_OK) else None


class Prometheus:
    """One Prometheus server scraping `targets` ("host:port" strings) at `metrics_path`."""

    def __init__(self, targets, job="target", metrics_path="/metrics", scrape_interval="1s",
                 ready_deadline=30.0, binary=None):
        if not targets:
            raise ValueError("Prometheus needs at least one scrape target")
        self.targets = list(targets)
        self.job = job
        self.metrics_path = metrics_path
        self.scrape_interval = scrape_interval
        self.ready_deadline = ready_deadline
        self.binary = binary or find_binary()
        self.port = None
        self.url = None
        self.dir = None
        self.log_path = None
        self._proc = None
        self._log = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self):
        """Starts the server and returns self once GET /-/ready answers 200. Raises
        PrometheusError (with the end of its log) when it exits or is not ready in time."""
        if self._proc is not None:
            raise PrometheusError("this Prometheus is already started")
        if self.binary is None:
            raise PrometheusError(
                "no prometheus binary: install the Debian package `prometheus` "
                "(scripts/install-deps.sh does) or set PROMETHEUS_BIN")
        self.dir = tempfile.mkdtemp(prefix="ferry-prometheus-")
        config = os.path.join(self.dir, "prometheus.yml")
        # JSON is YAML: no quoting rules to get wrong.
        with open(config, "w") as f:
            json.dump({
                "global": {"scrape_interval": self.scrape_interval,
                           "scrape_timeout": self.scrape_interval,
                           "evaluation_interval": self.scrape_interval},
                "scrape_configs": [{
                    "job_name": self.job,
                    "metrics_path": self.metrics_path,
                    "static_configs": [{"targets": self.targets}],
                }],
            }, f, indent=2)
        self.log_path = os.path.join(self.dir, "prometheus.log")
        # The port is free when picked but could be taken before Prometheus binds it: retry then.
        for attempt in range(3):
            self.port = free_loopback_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self._log = open(self.log_path, "ab")
            self._proc = subprocess.Popen(
                [self.binary,
                 f"--config.file={config}",
                 f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 "--storage.tsdb.retention.time=1h",
                 "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                cwd=self.dir, start_new_session=True)
            try:
                self._wait_ready()
                return self
            except PrometheusError:
                in_use = "address already in use" in self.log_tail()
                self._kill()
                if not in_use or attempt == 2:
                    self._remove_dir()
                    raise

    def stop(self, grace=10.0):
        """SIGTERM, wait up to `grace` seconds, then SIGKILL; removes the temp folder. Idempotent.
        Returns the exit status (None if it was not running)."""
        status = self._kill(grace)
        self._remove_dir()
        return status

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def log_tail(self, limit=4000):
        """The end of Prometheus's own log (for error messages)."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-limit:].decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    # --- queries ------------------------------------------------------------------------------

    def query(self, expr):
        """The `data.result` of an instant query of `expr` evaluated now: for a vector, a list of
        {"metric": {label: value}, "value": [unix_time, "text value"]}. Raises PrometheusError
        with Prometheus's message when the expression is invalid or the server fails."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            try:
                body = json.load(e)
            except ValueError:
                raise PrometheusError(f"query {expr!r}: HTTP {e.code} from {self.url}") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise PrometheusError(f"query {expr!r} to {self.url} failed: {e}") from None
        if body.get("status") != "success":
            raise PrometheusError(
                f"query {expr!r}: {body.get('errorType', 'error')}: {body.get('error', body)}")
        return body["data"]["result"]

    def query_value(self, expr):
        """The value of the single sample `expr` selects, as a float; None when it selects none.
        Raises PrometheusError when it selects several."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"query {expr!r} selects {len(result)} series, expected one: {result}")
        return float(result[0]["value"][1])

    def wait_for(self, expr, predicate, deadline=30.0):
        """Polls `query(expr)` until `predicate(result)` is true and returns that result; raises
        TimeoutError with the last result after `deadline` seconds."""
        end = time.monotonic() + deadline
        while True:
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() >= end:
                raise TimeoutError(
                    f"Prometheus: {expr!r} did not satisfy the predicate within {deadline} s; "
                    f"last result: {result}; targets: {self.target_health()}")
            time.sleep(POLL_INTERVAL)

    def target_health(self):
        """[(scrape URL, health, last error)] of the active targets, for error messages."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=HTTP_TIMEOUT) as r:
                active = json.load(r)["data"]["activeTargets"]
        except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
            return f"unknown ({e})"
        return [(t.get("scrapeUrl"), t.get("health"), t.get("lastError")) for t in active]

    # --- internals ----------------------------------------------------------------------------

    def _wait_ready(self):
        end = time.monotonic() + self.ready_deadline
        while time.monotonic() < end:
            if self._proc.poll() is not None:
                raise PrometheusError(
                    f"prometheus exited with status {self._proc.returncode} before it was ready; "
                    f"its log:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=HTTP_TIMEOUT) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(POLL_INTERVAL)
        raise PrometheusError(
            f"prometheus on {self.url} not ready within {self.ready_deadline} s; its log:\n"
            f"{self.log_tail()}")

    def _kill(self, grace=10.0):
        proc, self._proc = self._proc, None
        status = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=grace)
            status = proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return status

    def _remove_dir(self):
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
