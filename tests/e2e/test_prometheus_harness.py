"""The Prometheus harness (prometheus_harness.py) against a tiny exporter started here: a stdlib
HTTP server whose /metrics serves fixed Prometheus text. Prometheus scrapes it every second; the
tests read the samples back through the query API, as the serving e2e test will for `ferry serve`.

Bounded: Prometheus is ready within seconds, its first scrape lands a few seconds after start,
and every wait has a deadline of at most 30 s.
"""

import http.server
import os
import threading
import unittest

from prometheus_harness import Prometheus, PrometheusError

DEADLINE = 30.0


class _Exporter:
    """Serves `text` at /metrics on 127.0.0.1 (a port of the kernel's choice); counts scrapes."""

    def __init__(self):
        self.text = 'demo_requests_total{code="200"} 7\n'
        self.scrapes = 0
        self.user_agents = set()
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                exporter.scrapes += 1
                exporter.user_agents.add(self.headers.get("User-Agent", ""))
                body = exporter.text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _value(result):
    return float(result[0]["value"][1]) if len(result) == 1 else None


class PrometheusHarnessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.exporter = _Exporter()
        cls.target = f"127.0.0.1:{cls.exporter.port}"
        cls.prom = Prometheus([cls.target], job="demo")
        try:
            cls.prom.start()
        except Exception:
            cls.exporter.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.prom.stop()
        cls.exporter.close()

    def setUp(self):
        self.exporter.text = 'demo_requests_total{code="200"} 7\n'

    def test_reads_the_scraped_counter_back(self):
        result = self.prom.wait_for('demo_requests_total{code="200"}',
                                    lambda r: _value(r) == 7.0, deadline=DEADLINE)
        self.assertEqual(len(result), 1)
        labels = result[0]["metric"]
        self.assertEqual(labels["__name__"], "demo_requests_total")
        self.assertEqual(labels["code"], "200")
        self.assertEqual(labels["job"], "demo")
        self.assertEqual(labels["instance"], self.target)
        self.assertEqual(self.prom.query_value('demo_requests_total{code="200"}'), 7.0)
        self.assertGreaterEqual(self.exporter.scrapes, 1)
        self.assertTrue(any("Prometheus" in ua for ua in self.exporter.user_agents),
                        self.exporter.user_agents)

    def test_target_is_up(self):
        result = self.prom.wait_for('up{job="demo"}', lambda r: _value(r) == 1.0, deadline=DEADLINE)
        self.assertEqual(result[0]["metric"]["instance"], self.target)

    def test_follows_a_changing_counter(self):
        self.prom.wait_for('demo_requests_total{code="200"}', lambda r: _value(r) == 7.0,
                           deadline=DEADLINE)
        self.exporter.text = 'demo_requests_total{code="200"} 9\ndemo_requests_total{code="500"} 1\n'
        self.prom.wait_for('demo_requests_total{code="500"}', lambda r: _value(r) == 1.0,
                           deadline=DEADLINE)
        self.assertEqual(self.prom.query_value('demo_requests_total{code="200"}'), 9.0)
        self.assertEqual(self.prom.query_value("sum(demo_requests_total)"), 10.0)
        with self.assertRaisesRegex(PrometheusError, "selects 2 series"):
            self.prom.query_value("demo_requests_total")

    def test_absent_series_is_empty_and_wait_for_times_out(self):
        self.assertEqual(self.prom.query('demo_requests_total{code="404"}'), [])
        self.assertIsNone(self.prom.query_value('demo_requests_total{code="404"}'))
        with self.assertRaisesRegex(TimeoutError, "did not satisfy"):
            self.prom.wait_for('demo_requests_total{code="404"}', bool, deadline=0.5)

    def test_invalid_expression_raises_with_prometheus_message(self):
        with self.assertRaisesRegex(PrometheusError, "bad_data"):
            self.prom.query("sum(")


class PrometheusLifecycleTest(unittest.TestCase):
    def test_stop_ends_the_process_and_removes_its_folder(self):
        exporter = _Exporter()
        self.addCleanup(exporter.close)
        prom = Prometheus([f"127.0.0.1:{exporter.port}"], job="demo")
        self.addCleanup(prom.stop)
        prom.start()
        folder, proc = prom.dir, prom._proc
        self.assertTrue(os.path.isdir(folder))
        self.assertTrue(prom.url.startswith("http://127.0.0.1:"))
        self.assertEqual(prom.query_value("vector(3)"), 3.0)
        status = prom.stop()
        self.assertEqual(status, 0)
        self.assertIsNotNone(proc.poll())
        self.assertFalse(os.path.exists(folder))
        self.assertIsNone(prom.stop())  # idempotent
        with self.assertRaises(PrometheusError):
            prom.query("vector(1)")

    def test_missing_binary_is_a_clear_error(self):
        prom = Prometheus(["127.0.0.1:1"], binary=None)
        prom.binary = None
        with self.assertRaisesRegex(PrometheusError, "install the Debian package `prometheus`"):
            prom.start()


if __name__ == "__main__":
    unittest.main()
