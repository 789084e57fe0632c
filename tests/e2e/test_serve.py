"""`ferry serve`, `ferry deploy` and their kin end to end: the real binary on the project of
tests/fixtures/serve (churn:1 and churn:2, logistic regressions; flaky:1, a Python model), with
real HTTP clients (http.client, keep-alive), kill -9 of the server while it logs, a hot swap
under a request loop, canaries that promote and that roll back by themselves, two deploys racing,
API keys, a Python worker killed, and Prometheus scraping the server.

Every wait is a bounded poll; every process a test starts is killed at its cleanup."""

import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import unittest

import zstandard

from prometheus_harness import Prometheus
from test_models_cli import _ClassScope, expected_probability, make_source
from ferry_e2e import (EXIT_CONFLICT, EXIT_OK, EXIT_RUN_FAILED, FerryTestCase, Project,
                       wait_until)

_HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(_HERE, "..", "fixtures", "serve")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in [os.path.abspath(os.path.join(_HERE, "..", "..", "python")),
                os.environ.get("PYTHONPATH", "")] if p)

ROW = {"customer_id": 7, "plan": "pro", "charges": 71.5, "tenure": 3}
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class Client:
    """One keep-alive HTTP connection to a server under test."""

    def __init__(self, port, timeout=10):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method, path, body=None, headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        try:
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
            data = r.read()
        except (ConnectionError, http.client.HTTPException):
            self.conn.close()
            raise
        text = data.decode()
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        return r.status, dict(r.getheaders()), doc, text

    def invoke(self, rows, headers=None):
        return self.request("POST", "/invocations", {"instances": rows}, headers)

    def close(self):
        self.conn.close()


def fixture_project(cls, *runs):
    """A project of the serving fixture for a test class, its source made, each of `runs` (the
    arguments of one `ferry run`, e.g. ("train", "--param=C=0.05")) run in order."""
    p = Project(_ClassScope(cls), ferry_yaml=None)
    shutil.copytree(FIXTURE, p.root, dirs_exist_ok=True)
    make_source(p.path("source", "crm.db"))
    for args in runs:
        p.run(*args)
    return p


class ServeTest(FerryTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.p = fixture_project(cls, ("train",),                      # churn:1
                                ("train", "--param=C=0.05"),          # churn:2
                                ("python",))                          # flaky:1

    # --- helpers ------------------------------------------------------------------------------

    def deploy(self, endpoint, model, *args, expect=EXIT_OK, env=None):
        r = self.p.ferry("deploy", endpoint, "--model", model, *args, timeout=120)
        self.assertEqual(r.rc, expect, r)
        return r

    def serve(self, endpoint, *args, env=None):
        """Starts `ferry serve --port 0`; returns (Background, port) once it listens."""
        old = dict(os.environ)
        os.environ.update(env or {})
        try:
            bg = self.p.start("serve", "--endpoint", endpoint, "--port", "0", *args)
        finally:
            os.environ.clear()
            os.environ.update(old)

        def port():
            m = re.search(r"^serving endpoint \S+ on http://127\.0\.0\.1:(\d+)$", bg.stdout(),
                          re.M)
            if m:
                return int(m.group(1))
            if bg.proc.poll() is not None:
                raise AssertionError("ferry serve exited ({}):\n{}{}".format(
                    bg.proc.returncode, bg.stdout(), bg.stderr()))
            return None
        return bg, wait_until(port, "ferry serve to listen")

    def endpoint(self, name):
        return json.loads(self.p.ok("endpoint", "show", name, "--json").out)

    def expected_probability(self, version, row):
        with open(os.path.join(self.p.lake, "models", "churn", str(version), "model.json")) as f:
            return expected_probability(json.load(f), row)

    def segments(self, endpoint):
        root = os.path.join(self.p.lake, "inference", endpoint)
        out = []
        for d, _, files in os.walk(root):
            # A kill -9 may leave a temp file of a segment being written: never a segment.
            out += [os.path.join(d, f) for f in files if f.endswith(".jsonl.zst")]
        return sorted(out)

    def records(self, endpoint):
        recs = []
        for path in self.segments(endpoint):
            self.assertTrue(path.endswith(".jsonl.zst"), path)
            with open(path, "rb") as f:
                text = zstandard.ZstdDecompressor().decompressobj().decompress(f.read()).decode()
            recs += [json.loads(line) for line in text.splitlines() if line]
        return recs

    # --- routes -------------------------------------------------------------------------------

    def test_routes_contract(self):
        self.deploy("routes", "churn:1", "--wait", "--echo-inputs", "on")
        bg, port = self.serve("routes")
        c = Client(port)
        self.addCleanup(c.close)

        for path, field in (("/ping", "ok"), ("/ready", "ready"), ("/v2/health/live", "live"),
                            ("/v2/health/ready", "ready")):
            status, _, doc, _ = c.request("GET", path)
            self.assertEqual((status, doc), (200, {field: True}), path)

        status, headers, doc, _ = c.invoke([ROW])
        self.assertEqual(status, 200, doc)
        self.assertRegex(doc["transaction_id"], UUID7)
        self.assertEqual(headers["X-Ferry-Transaction-Id"], doc["transaction_id"])
        self.assertEqual(doc["model"], {"name": "churn", "version": 1, "variant": "blue"})
        self.assertEqual(doc["inputs"], [ROW])
        p1 = doc["predictions"][0]["probabilities"]["1"]
        self.assertAlmostEqual(p1, self.expected_probability(1, ROW), places=12)
        self.assertIn(doc["predictions"][0]["label"], ("0", "1"))

        # The model's inputs: the transform's input columns but the target and what it drops
        # first (customer_id: accepted, ignored, optional).
        status, _, meta, _ = c.request("GET", "/v2/models/churn")
        self.assertEqual(status, 200, meta)
        schema = [i["name"] for i in meta["inputs"]]
        self.assertEqual(sorted(schema), ["charges", "plan", "tenure"])
        no_id = {k: v for k, v in ROW.items() if k != "customer_id"}
        self.assertEqual(c.invoke([no_id])[2]["predictions"], doc["predictions"])

        # Arrays in input order and text/csv give the same predictions.
        status, _, arr, _ = c.invoke([[ROW[n] for n in schema]])
        self.assertEqual((status, arr["predictions"]), (200, doc["predictions"]))
        csv_body = ",".join(str(ROW[n]) for n in schema) + "\n"
        status, _, csv_doc, _ = c.request("POST", "/invocations", csv_body,
                                          {"Content-Type": "text/csv"})
        self.assertEqual((status, csv_doc["predictions"]), (200, doc["predictions"]))

        # Transaction ids: time-ordered; a client's valid UUID is honoured, anything else not.
        ids = [c.invoke([ROW])[2]["transaction_id"] for _ in range(20)]
        self.assertEqual(ids, sorted(ids))
        mine = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
        _, headers, doc, _ = c.invoke([ROW], {"X-Ferry-Transaction-Id": mine})
        self.assertEqual((doc["transaction_id"], headers["X-Ferry-Transaction-Id"]), (mine, mine))
        _, _, doc, _ = c.invoke([ROW], {"X-Ferry-Transaction-Id": "not-a-uuid"})
        self.assertRegex(doc["transaction_id"], UUID7)

        # Open Inference Protocol v2.
        self.assertEqual([o["name"] for o in meta["outputs"]], ["label", "probabilities"])
        body = {"id": "req-1", "inputs": [
            {"name": n, "shape": [1], "datatype": "BYTES" if n == "plan" else "FP64",
             "data": [ROW[n]]} for n in schema]}
        status, _, v2, _ = c.request("POST", "/v2/models/churn/infer", body)
        self.assertEqual(status, 200, v2)
        self.assertEqual(v2["id"], "req-1")
        self.assertEqual(v2["model_name"], "churn")
        self.assertEqual(v2["model_version"], "1")
        probs = {o["name"]: o for o in v2["outputs"]}["probabilities"]
        self.assertEqual(probs["shape"], [1, 2])
        self.assertAlmostEqual(probs["data"][1], p1, places=12)
        self.assertRegex(v2["parameters"]["transaction_id"], UUID7)

        # /endpoint and /metrics.
        status, _, ep, _ = c.request("GET", "/endpoint")
        self.assertEqual(status, 200)
        self.assertEqual([(v["name"], v["model"], v["version"], v["weight"], v["mode"])
                          for v in ep["variants"]], [("blue", "churn", 1, 100, "live")])
        status, headers, _, text = c.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain"), headers)
        m = re.search(r'^ferry_requests_total\{[^}]*variant="blue"[^}]*code="200"[^}]*\} (\d+)$',
                      text, re.M)
        self.assertIsNotNone(m, text)
        self.assertEqual(int(m.group(1)), 27)   # 1 + no id + array + csv + 20 + 2 ids + v2
        self.assertIn("ferry_request_duration_seconds_bucket", text)
        self.assertIn("ferry_in_flight_requests", text)
        self.assertRegex(text, r'(?m)^ferry_inference_log_dropped_total\{endpoint="routes"\} 0$')

    def test_bad_input_gets_4xx_naming_the_field(self):
        self.deploy("bad", "churn:1", "--wait")
        bg, port = self.serve("bad", "--max-body", "2Ki")
        c = Client(port)
        self.addCleanup(c.close)
        cases = [
            ("malformed json", '{"instances": [', "application/json", 400, "not valid JSON"),
            ("missing feature", {"instances": [{k: v for k, v in ROW.items() if k != "plan"}]},
             None, 400, "missing feature 'plan'"),
            ("mistyped feature", {"instances": [dict(ROW, tenure="three")]}, None, 400,
             "tenure"),
            ("unknown feature", {"instances": [dict(ROW, plann="pro")]}, None, 400,
             "unknown feature 'plann'"),
            ("empty batch", {"instances": []}, None, 400, "empty batch"),
            ("not instances", {"rows": [ROW]}, None, 400, "instances"),
            ("short array", {"instances": [[1, "pro"]]}, None, 400, "expected 3 values"),
            ("csv width", "1,pro\n", "text/csv", 400, "csv line 1"),
            ("oversized", {"instances": [ROW] * 200}, None, 413, ""),
        ]
        for name, body, ctype, status, needle in cases:
            with self.subTest(name):
                headers = {"Content-Type": ctype} if ctype else None
                if status == 413:
                    c = Client(port)   # the server closes the connection after a 413
                got, _, doc, text = c.request("POST", "/invocations", body, headers)
                self.assertEqual(got, status, text)
                self.assertIsInstance(doc, dict, text)
                self.assertIn("code", doc["error"])
                self.assertIn(needle, doc["error"]["message"])
                if status == 413:
                    c = Client(port)
        # Bad flags of the server itself: a clear error, exit 2, before anything binds.
        r = self.p.ferry("serve", "--endpoint", "bad", "--port", "0", "--log-segment-age", "0s")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("segment_age", r.err)
        r = self.p.ferry("serve", "--endpoint", "nosuch", "--port", "0")
        self.assertEqual(r.rc, 3, r)
        self.assertIn("nosuch", r.err)
        got, _, doc, _ = c.request("GET", "/invocations")
        self.assertEqual((got, doc["error"]["code"]), (405, "method_not_allowed"))
        got, _, doc, _ = c.request("GET", "/nope")
        self.assertEqual((got, doc["error"]["code"]), (404, "not_found"))
        # Still serving, unharmed.
        status, _, doc, _ = Client(port).invoke([ROW])
        self.assertEqual(status, 200, doc)

    # --- the inference log --------------------------------------------------------------------

    def test_sigterm_finishes_and_flushes_the_log(self):
        self.deploy("flush", "churn:1", "--wait")
        bg, port = self.serve("flush")
        c = Client(port)
        ids = [c.invoke([ROW, dict(ROW, tenure=30)])[2]["transaction_id"] for _ in range(25)]
        c.close()
        os.kill(bg.pid, signal.SIGTERM)
        r = bg.wait(timeout=30)
        self.assertEqual(r.rc, EXIT_OK, r)
        recs = self.records("flush")
        self.assertEqual(sorted((x["transaction_id"], x["row"]) for x in recs),
                         sorted((i, row) for i in ids for row in (0, 1)))
        first = [x for x in recs if x["transaction_id"] == ids[0] and x["row"] == 0][0]
        self.assertEqual(first["inputs"], ROW)
        self.assertEqual((first["endpoint"], first["variant"], first["mode"], first["model"]),
                         ("flush", "blue", "live", {"name": "churn", "version": 1}))
        self.assertIn("probabilities", first["outputs"])
        self.assertGreater(first["latency_ms"], 0)
        self.assertTrue(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", first["time"]))
        # inference/<endpoint>/<yyyy>/<mm>/<dd>/<hh>/<segment>.jsonl.zst
        rel = os.path.relpath(self.segments("flush")[0], self.p.lake)
        self.assertRegex(rel, r"^inference/flush/\d{4}/\d\d/\d\d/\d\d/[^/]+\.jsonl\.zst$")

    def test_kill9_while_logging_leaves_whole_segments(self):
        self.deploy("k9", "churn:1", "--wait")
        bg, port = self.serve("k9", "--log-segment-bytes", "4Ki")
        stop = threading.Event()

        def load():
            c = Client(port, timeout=5)
            while not stop.is_set():
                try:
                    c.invoke([ROW])
                except Exception:
                    return
        t = threading.Thread(target=load)
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(stop.set)
        wait_until(lambda: len(self.segments("k9")) >= 3, "three committed segments")
        bg.kill9()
        stop.set()
        segs = self.segments("k9")
        self.assertGreaterEqual(len(segs), 3)
        recs = self.records("k9")   # every segment decompresses whole, every line parses
        self.assertGreater(len(recs), 0)
        for path in segs:
            self.assertFalse(os.path.basename(path).startswith("."), path)

    # --- deployments --------------------------------------------------------------------------

    def test_hot_swap_under_load_fails_no_request(self):
        self.deploy("swap", "churn:1", "--wait")
        bg, port = self.serve("swap")
        stop = threading.Event()
        seen = []

        def load():
            c = Client(port)
            while not stop.is_set():
                status, _, doc, text = c.invoke([ROW])
                seen.append((status, doc["model"]["version"] if status == 200 else text))
        t = threading.Thread(target=load)
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(stop.set)
        wait_until(lambda: len(seen) >= 50, "requests before the swap")
        self.deploy("swap", "churn:2", "--wait")   # blue-green: green ready, switch, drain blue
        wait_until(lambda: seen and seen[-1] == (200, 2), "version 2 answering")
        n = len(seen)
        wait_until(lambda: len(seen) >= n + 50, "requests after the swap")
        stop.set()
        t.join(timeout=10)
        bad = [s for s in seen if s[0] != 200]
        self.assertEqual(bad, [])
        versions = [v for _, v in seen]
        first2 = versions.index(2)
        self.assertEqual(set(versions[:first2]), {1})
        self.assertEqual(set(versions[first2:]), {2})
        ep = self.endpoint("swap")
        self.assertEqual(ep["state"], "in_service")
        self.assertEqual([(v["name"], v["version"]) for v in ep["config"]["variants"]],
                         [("green", 2)])

    def test_an_invalid_new_config_is_rejected_and_the_last_good_one_stays(self):
        self.deploy("reject", "churn:1", "--wait")
        bg, port = self.serve("reject", "--no-reconcile")
        c = Client(port)
        self.assertEqual(c.invoke([ROW])[2]["model"]["version"], 1)
        # A config naming a version that does not exist, written behind ferry's back.
        bad = {"variants": [{"name": "green", "model": "churn", "version": 99, "weight": 100,
                             "mode": "live"}]}
        db = sqlite3.connect(self.p.path(".ferry", "state.db"))
        with db:
            db.execute("UPDATE endpoints SET config_json = ?, version = version + 1 WHERE name = ?",
                       (json.dumps(bad), "reject"))
        db.close()
        os.kill(bg.pid, signal.SIGHUP)
        wait_until(lambda: "rejected the new config of endpoint reject" in bg.stderr(),
                   "the serving process to reject the config")
        self.assertIn("churn:99", bg.stderr())
        for _ in range(20):
            status, _, doc, _ = c.invoke([ROW])
            self.assertEqual((status, doc["model"]["version"]), (200, 1))

    def traffic(self, port):
        stop = threading.Event()
        statuses = []

        def load():
            c = Client(port)
            while not stop.is_set():
                statuses.append(c.invoke([ROW])[0])
        t = threading.Thread(target=load)
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(stop.set)
        return stop, statuses

    def test_canary_promotes_after_its_bake(self):
        self.deploy("promote", "churn:1", "--wait")
        bg, port = self.serve("promote", "--no-reconcile")
        stop, statuses = self.traffic(port)
        r = self.deploy("promote", "churn:2", "--strategy", "canary", "--weight", "30", "--bake",
                        "2s", "--rollback-on", "error_rate>0.05,p99_ms>500", "--min-requests",
                        "5", "--wait")
        self.assertIn("promoted", r.out)
        ep = self.endpoint("promote")
        self.assertEqual([(v["name"], v["model"], v["version"], v["weight"])
                          for v in ep["config"]["variants"]], [("green", "churn", 2, 100)])
        self.assertEqual(ep["deployments"][0]["state"], "promoted")
        self.assertEqual(ep["deployments"][0]["strategy"], "canary")
        self.assertEqual(set(statuses), {200})

    def test_canary_that_fails_its_requests_rolls_back_by_itself(self):
        self.deploy("canary", "churn:1", "--wait")
        bg, port = self.serve("canary", env={"FLAKY_FAIL": "1"})
        stop, statuses = self.traffic(port)
        # Not --wait: the serving process drives the rollout and must roll it back alone.
        r = self.deploy("canary", "flaky:1", "--strategy", "canary", "--weight", "50", "--bake",
                        "10m", "--rollback-on", "error_rate>0.1")
        dep = re.search(r"^deployment (d\S+):", r.out, re.M).group(1)

        def rolled_back():
            ds = self.endpoint("canary")["deployments"]
            d = [x for x in ds if x["id"] == dep][0]
            return d if d["state"] == "rolled_back" else None
        d = wait_until(rolled_back, "the canary to roll back", timeout=60)
        self.assertRegex(d["message"], r"error_rate [0-9.]+ > 0\.1")
        ep = self.endpoint("canary")
        self.assertEqual(ep["state"], "in_service")
        self.assertEqual([(v["model"], v["version"], v["weight"])
                          for v in ep["config"]["variants"]], [("churn", 1, 100)])
        self.assertIn(500, statuses)
        # Back to the champion only: every request answers again.
        n = len(statuses)
        wait_until(lambda: len(statuses) >= n + 200 and set(statuses[-100:]) == {200},
                   "only 200s after the rollback")

    def test_shadow_gets_a_copy_of_every_request_and_both_are_logged(self):
        self.deploy("shadow", "churn:1", "--wait")
        bg, port = self.serve("shadow", "--no-reconcile")
        stop, statuses = self.traffic(port)
        r = self.deploy("shadow", "churn:2", "--strategy", "shadow", "--bake", "2s",
                        "--rollback-on", "error_rate>0.05", "--wait")
        self.assertIn("promoted", r.out)
        stop.set()
        self.assertEqual(set(statuses), {200})
        os.kill(bg.pid, signal.SIGTERM)
        self.assertEqual(bg.wait(timeout=30).rc, EXIT_OK)
        recs = self.records("shadow")
        shadow = [x for x in recs if x["mode"] == "shadow"]
        self.assertGreater(len(shadow), 0)
        self.assertEqual({x["model"]["version"] for x in shadow}, {2})
        # Each shadow record mirrors a live answer under the same transaction id.
        live = {x["transaction_id"]: x for x in recs if x["mode"] == "live"}
        for x in shadow:
            self.assertIn(x["transaction_id"], live)
            self.assertEqual(live[x["transaction_id"]]["model"]["version"], 1)
            self.assertEqual(live[x["transaction_id"]]["inputs"], x["inputs"])

    def test_two_concurrent_deploys_exactly_one_proceeds(self):
        self.deploy("race", "churn:1", "--wait")
        args = ["deploy", "race", "--model", "churn:2", "--strategy", "canary", "--bake", "10m"]
        a, b = self.p.start(*args), self.p.start(*args)
        ra, rb = a.wait(), b.wait()
        self.assertEqual(sorted([ra.rc, rb.rc]), [EXIT_OK, EXIT_CONFLICT], (ra, rb))
        winner, loser = (ra, rb) if ra.rc == EXIT_OK else (rb, ra)
        dep = re.search(r"^deployment (d\S+):", winner.out, re.M).group(1)
        self.assertIn(dep, loser.err)
        self.assertIn("in flight", loser.err)
        r = self.p.ok("rollback", "race")
        self.assertIn("rolled_back", r.out)
        ep = self.endpoint("race")
        self.assertEqual([(v["version"], v["weight"]) for v in ep["config"]["variants"]],
                         [(1, 100)])

    def test_rollback_after_a_promotion_restores_the_previous_model(self):
        self.deploy("back", "churn:1", "--wait")
        self.deploy("back", "churn:2", "--wait")
        self.p.ok("rollback", "back")
        ep = self.endpoint("back")
        self.assertEqual([(v["version"], v["weight"]) for v in ep["config"]["variants"]],
                         [(1, 100)])
        self.assertEqual(ep["deployments"][0]["strategy"], "rollback")
        listing = self.p.ok("endpoints").out
        self.assertRegex(listing, r"(?m)^back\s+in_service\s+\d+\s+blue=churn:1 100%")

    # --- auth ---------------------------------------------------------------------------------

    def test_api_keys_and_roles(self):
        self.deploy("auth", "churn:1", "--wait", "--auth", "on")
        invoke = self.p.ok("keys", "create", "--role", "invoke").out.strip()
        admin = self.p.ok("keys", "create", "--role", "admin").out.strip()
        self.assertRegex(invoke, r"^fk_[0-9a-f]{10}_[0-9a-f]{64}$")
        # Stored hashed: the secret is nowhere in the state database.
        with open(self.p.path(".ferry", "state.db"), "rb") as f:
            self.assertNotIn(invoke.split("_")[2].encode(), f.read())
        bg, port = self.serve("auth")
        c = Client(port)
        status, headers, doc, _ = c.invoke([ROW])
        self.assertEqual((status, doc["error"]["code"]), (401, "unauthenticated"))
        self.assertEqual(headers.get("WWW-Authenticate"), "Bearer")
        wrong = invoke[:-1] + ("0" if invoke[-1] != "0" else "1")
        status, _, doc, _ = c.invoke([ROW], {"Authorization": "Bearer " + wrong})
        self.assertEqual(status, 401)
        status, _, doc, _ = c.invoke([ROW], {"Authorization": "Bearer " + invoke})
        self.assertEqual(status, 200, doc)
        status, _, doc, _ = c.request("GET", "/endpoint", headers={"Authorization": "Bearer " + invoke})
        self.assertEqual((status, doc["error"]["code"]), (403, "forbidden"))
        status, _, doc, _ = c.request("GET", "/endpoint", headers={"Authorization": "Bearer " + admin})
        self.assertEqual(status, 200, doc)
        self.assertEqual(c.request("GET", "/ping")[0], 200)   # health stays open
        key_id = invoke.split("_")[1]
        self.p.ok("keys", "revoke", key_id)
        wait_until(lambda: c.invoke([ROW], {"Authorization": "Bearer " + invoke})[0] == 401,
                   "the revoked key to be refused")

    # --- Python workers -----------------------------------------------------------------------

    def test_a_killed_python_worker_is_replaced(self):
        self.deploy("py", "flaky:1", "--wait")
        bg, port = self.serve("py")
        c = Client(port)
        status, _, doc, _ = c.invoke([ROW])
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["model"]["name"], "flaky")
        workers = children(bg.pid)
        self.assertGreaterEqual(len(workers), 1)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)

        def replaced():
            now = children(bg.pid)
            return now and not set(now) & set(workers) and Client(port).invoke([ROW])[0] == 200
        wait_until(replaced, "a new worker answering", timeout=60)

    # --- a real Prometheus scrapes it ----------------------------------------------------------

    def test_prometheus_reads_the_request_counter(self):
        self.deploy("prom", "churn:1", "--wait")
        bg, port = self.serve("prom")
        c = Client(port)
        for _ in range(7):
            self.assertEqual(c.invoke([ROW])[0], 200)
        c.close()
        with Prometheus(["127.0.0.1:%d" % port], job="ferry") as prom:
            expr = 'sum(ferry_requests_total{endpoint="prom",variant="blue",code="200"})'
            result = prom.wait_for(expr, lambda r: bool(r) and float(r[0]["value"][1]) >= 7,
                                   deadline=60)
            self.assertEqual(float(result[0]["value"][1]), 7.0)
            up = prom.query('up{job="ferry"}')
            self.assertEqual(up[0]["value"][1], "1")


def children(pid):
    """Live child processes of `pid` that run Python (the model workers)."""
    out = subprocess.run(["ps", "-o", "pid=,stat=,args=", "--ppid", str(pid)],
                         capture_output=True, text=True, timeout=10).stdout
    found = []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and not parts[1].startswith("Z") and "python" in parts[2]:
            found.append(int(parts[0]))
    # Workers may run under `sh -c`: look one level down too.
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and "python" not in parts[2]:
            found += children(int(parts[0]))
    return found


if __name__ == "__main__":
    unittest.main()
