"""`serve`: a trained toy model served on port 0, queried over HTTP, stopped by SIGTERM."""
import http.client
import json
import os
import signal
import tempfile
import threading
import time
import unittest

import support
from support import Server, trained_project

MAX_BODY = 1000  # --max-body-bytes, so that the 413 test sends little


class ServeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.project, env = trained_project(cls.tmp.name)
        cls.model_dir = env["SM_MODEL_DIR"]
        serve_env = {k: v for k, v in env.items() if not k.startswith("SM_")}
        cls.server = Server(["-m", "ferry_model", "serve", "models/toy.py:Mean", "--model-dir",
                             cls.model_dir, "--port", "0", "--max-body-bytes", str(MAX_BODY)],
                            serve_env, cls.project)
        cls.addClassCleanup(cls.server.stop)

    def assertError(self, response, status, code):
        got_status, content_type, body = response
        self.assertEqual((got_status, content_type), (status, "application/json"), body)
        self.assertEqual(sorted(body), ["error"])
        self.assertEqual(body["error"]["code"], code)
        self.assertIsInstance(body["error"]["message"], str)
        self.assertTrue(body["error"]["message"])
        return body["error"]["message"]

    def test_ping(self):
        self.assertEqual(self.server.request("GET", "/ping"),
                         (200, "application/json", {"status": "ok"}))

    def test_json_instances(self):
        status, _, body = self.server.post({"instances": [{"x": 1}, {"x": 0.5}, {"x": None}]})
        self.assertEqual((status, body), (200, {"predictions": [11.0, 10.5, 10.0]}))

    def test_json_bare_list_with_charset(self):
        status, _, body = self.server.post([{"x": 2}], "application/json; charset=utf-8")
        self.assertEqual((status, body), (200, {"predictions": [12.0]}))

    def test_csv(self):
        status, _, body = self.server.post("x,name\n1,a\n,b\n3,c\n", "text/csv")
        self.assertEqual((status, body), (200, {"predictions": [11.0, 10.0, 13.0]}))

    def test_bad_json(self):
        msg = self.assertError(self.server.post("{not json"), 400, "invalid_json")
        self.assertIn("not valid JSON", msg)
        self.assertError(self.server.post({"rows": []}), 400, "invalid_json")
        self.assertError(self.server.post({"instances": {"x": 1}}), 400, "invalid_json")

    def test_bad_instance(self):
        msg = self.assertError(self.server.post([{"x": 1}, [1, 2]]), 400, "bad_instance")
        self.assertEqual(msg, "instance 1 is a list, expected an object of feature -> value")

    def test_empty_batch(self):
        self.assertError(self.server.post({"instances": []}), 400, "empty_batch")
        self.assertError(self.server.post("x,y\n", "text/csv"), 400, "empty_batch")

    def test_bad_csv(self):
        self.assertError(self.server.post("", "text/csv"), 400, "invalid_csv")
        msg = self.assertError(self.server.post("x,y\n1,2\n3\n", "text/csv"), 400, "invalid_csv")
        self.assertEqual(msg, "line 3: 1 fields, the header has 2")

    def test_unsupported_media_type(self):
        self.assertError(self.server.post("x=1", "application/x-www-form-urlencoded"), 415,
                         "unsupported_media_type")

    def test_oversized_body(self):
        body = json.dumps({"instances": [{"x": 1}] * 200})
        self.assertGreater(len(body), MAX_BODY)
        msg = self.assertError(self.server.post(body), 413, "payload_too_large")
        self.assertEqual(msg, f"the body is {len(body)} bytes, more than the limit of {MAX_BODY} "
                         "(split the batch)")
        # The server still answers after refusing.
        self.assertEqual(self.server.request("GET", "/ping")[0], 200)

    def test_content_length_required_and_numeric(self):
        status, body = self.server.raw("POST /invocations HTTP/1.1\r\nHost: t\r\n"
                                       "Content-Type: application/json\r\n\r\n")
        self.assertEqual((status, body["error"]["code"]), (411, "length_required"))
        status, body = self.server.raw("POST /invocations HTTP/1.1\r\nHost: t\r\n"
                                       "Content-Length: ten\r\n\r\n")
        self.assertEqual((status, body["error"]["code"]), (400, "bad_request"))

    def test_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            for x, want in ((1, 11.0), (2, 12.0)):
                conn.request("POST", "/invocations", body=json.dumps([{"x": x}]),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                self.assertEqual((resp.status, json.loads(resp.read())),
                                 (200, {"predictions": [want]}))
                self.assertFalse(resp.will_close)  # the same connection serves the next one
            # An error before the body was read closes the connection (the stream is out of step).
            conn.request("POST", "/nowhere", body="{}")
            resp = conn.getresponse()
            resp.read()
            self.assertEqual((resp.status, resp.getheader("Connection")), (404, "close"))
        finally:
            conn.close()

    def test_predict_exception(self):
        msg = self.assertError(self.server.post([{"x": 1}, {"boom": True}]), 500,
                               "prediction_failed")
        self.assertEqual(msg, "RuntimeError: boom requested")

    def test_non_finite_prediction(self):
        self.assertError(self.server.post([{"nan": 1}]), 500, "bad_predictions")

    def test_routes_and_methods(self):
        self.assertError(self.server.request("GET", "/nope"), 404, "not_found")
        self.assertError(self.server.request("GET", "/invocations"), 405, "method_not_allowed")
        self.assertError(self.server.request("POST", "/ping", b""), 405, "method_not_allowed")
        self.assertError(self.server.request("DELETE", "/invocations"), 405,
                         "method_not_allowed")


class ServeLifecycleTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.project, env = trained_project(self.tmp.name)
        self.model_dir = env["SM_MODEL_DIR"]
        self.env = {k: v for k, v in env.items() if not k.startswith("SM_")}

    def test_sigterm_stops_cleanly_and_module_comes_from_metadata(self):
        # No MODULE: the module and class recorded in ferry_model.json are used.
        server = Server(["-m", "ferry_model", "serve", "--model-dir", self.model_dir],
                        dict(self.env, PORT="0"), self.project)
        self.addCleanup(server.stop)
        self.assertEqual(server.post([{"x": 1}])[2], {"predictions": [11.0]})
        server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(server.proc.wait(timeout=10), 0, server.stderr_text())
        server.wait_line("ferry_model: stopped")

    def test_sigterm_lets_the_request_in_flight_finish(self):
        server = Server(["models/toy.py", "serve", "--model-dir", self.model_dir, "--port", "0"],
                        self.env, self.project)
        self.addCleanup(server.stop)
        hold = os.path.join(self.tmp.name, "release")
        answers = []
        client = threading.Thread(target=lambda: answers.append(server.post([{"hold": hold}])))
        client.start()
        deadline = time.monotonic() + 20
        while not os.path.exists(hold + ".started"):  # predict is running
            self.assertLess(time.monotonic(), deadline, "predict did not start")
            time.sleep(0.01)
        server.proc.send_signal(signal.SIGTERM)
        server.wait_line("ferry_model: SIGTERM: finishing the requests in flight")
        open(hold, "w").close()
        client.join(timeout=20)
        self.assertEqual(answers, [(200, "application/json", {"predictions": [10.0]})])
        self.assertEqual(server.proc.wait(timeout=10), 0, server.stderr_text())

    def test_script_serve_with_classification_model(self):
        done = support.run_python(["-m", "ferry_model", "train", "models/toy.py:Majority",
                                   "--model-dir", self.model_dir,
                                   "--channel", "train=" + os.path.join(self.tmp.name, "task",
                                                                        "input", "data",
                                                                        "train")],
                                  self.env, self.project)
        self.assertEqual(done.returncode, 0, done.stderr)
        server = Server(["-m", "ferry_model", "serve", "models/toy.py:Majority", "--model-dir",
                         self.model_dir, "--port", "0"], self.env, self.project)
        self.addCleanup(server.stop)
        self.assertEqual(server.post([{"x": 1}, {"x": 2}])[2],
                         {"predictions": [{"0": 0.25, "1": 0.75}, {"0": 0.25, "1": 0.75}]})

    def test_model_that_cannot_load_exits_1(self):
        empty = os.path.join(self.tmp.name, "empty")
        os.makedirs(empty)
        done = support.run_python(["models/toy.py", "serve", "--model-dir", empty, "--port", "0"],
                                  self.env, self.project, timeout=30)
        self.assertEqual(done.returncode, 1)
        self.assertIn("cannot load Mean from", done.stderr)
        self.assertNotIn("listening", done.stdout)


if __name__ == "__main__":
    unittest.main()
