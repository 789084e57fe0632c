"""The HTTP model server: GET /ping and POST /invocations, SageMaker-style (stdlib only).

`serve` loads the model, binds, prints "listening on HOST:PORT" (flushed: a supervisor or a
test reads the port from it when it asked for port 0), and serves until SIGTERM or SIGINT, on
which it stops accepting, finishes the requests in flight and returns 0.

Routes (every response body is JSON):
    GET  /ping         200 {"status": "ok"}: the model is loaded (it is loaded before binding)
    POST /invocations  200 {"predictions": [...]}, one per instance, in order
Errors are {"error": {"code": CODE, "message": TEXT}}; see ERRORS.

The runner's batch `predict` (runner.py) reads its rows with parse_instances and answers through
invoke, as /invocations does, so that the same rows give the same document offline and online.

Connections are kept alive (HTTP/1.1) unless a request fails before its body was read.

Thread-safety: one thread per connection (ThreadingHTTPServer); `predict` is serialized by a
lock unless the model class sets `thread_safe = True`.

Example:
    from ferry_model import server
    server.serve(Churn, "/srv/churn/model", host="127.0.0.1", port=0)
"""
import csv
import io
import json
import signal
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# code -> (HTTP status, when)
ERRORS = {
    "invalid_json": (400, "the body is not JSON, or not {\"instances\": [...]} or a list"),
    "invalid_csv": (400, "the CSV body has no header line or a row of the wrong width"),
    "bad_instance": (400, "an instance is not an object of feature -> value"),
    "empty_batch": (400, "no instances"),
    "bad_request": (400, "a malformed request (e.g. a bad Content-Length)"),
    "not_found": (404, "no such route"),
    "method_not_allowed": (405, "a route called with the wrong method"),
    "length_required": (411, "a POST without Content-Length (chunked bodies are not read)"),
    "payload_too_large": (413, "the body is larger than --max-body-bytes"),
    "unsupported_media_type": (415, "Content-Type is neither application/json nor text/csv"),
    "prediction_failed": (500, "predict raised an exception"),
    "bad_predictions": (500, "predict returned the wrong count or values JSON cannot hold"),
}

# Bodies over the limit but under this are read and discarded before the 413, so the client
# sees the answer instead of a connection reset; larger ones are cut off.
_DRAIN_LIMIT = 64 * 1024 * 1024


class RequestError(Exception):
    """A request the server answers with an error: `code` is a key of ERRORS, `message` the
    one-line reason. `predict` in the runner reports the same errors for a batch."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _csv_value(text):
    if text == "":
        return None
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    low = text.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    return text


def parse_instances(body, content_type):
    """Returns the list of row dicts of a request body; raises RequestError for a bad one."""
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media not in ("application/json", "text/csv"):
        raise RequestError("unsupported_media_type",
                           f"Content-Type {media!r} is not supported: send application/json "
                           "({\"instances\": [{\"feature\": value, ...}]}) or text/csv (with a "
                           "header line)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        code = "invalid_json" if media == "application/json" else "invalid_csv"
        raise RequestError(code, f"the body is not UTF-8: {e}") from None
    if media == "text/csv":
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if not rows or not rows[0]:
            raise RequestError("invalid_csv", "the CSV body has no header line (feature names)")
        header = rows[0]
        if len(set(header)) != len(header):
            raise RequestError("invalid_csv", "the CSV header repeats a column name")
        instances = []
        for line_no, record in enumerate(rows[1:], start=2):
            if not record:
                continue
            if len(record) != len(header):
                raise RequestError("invalid_csv", f"line {line_no}: {len(record)} fields, the "
                                   f"header has {len(header)}")
            instances.append({k: _csv_value(v) for k, v in zip(header, record)})
    else:
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise RequestError("invalid_json", f"the body is not valid JSON: {e}") from None
        if isinstance(doc, dict):
            if "instances" not in doc:
                raise RequestError("invalid_json",
                                   "expected {\"instances\": [...]} or a list of instances")
            doc = doc["instances"]
        if not isinstance(doc, list):
            raise RequestError("invalid_json", "\"instances\" must be a list")
        for i, inst in enumerate(doc):
            if not isinstance(inst, dict):
                raise RequestError("bad_instance", f"instance {i} is a {type(inst).__name__}, "
                                   "expected an object of feature -> value")
        instances = doc
    if not instances:
        raise RequestError("empty_batch", "no instances to predict")
    return instances


def _jsonable(value):
    """json.dumps' fallback: numpy scalars and arrays (duck-typed, numpy is not imported)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"a {type(value).__name__} is not JSON-serializable")


def encode_predictions(predictions, count):
    """Returns the 200 response body; raises RequestError("bad_predictions") when the model's
    answer has the wrong length or values JSON cannot hold (NaN, infinities, objects)."""
    if hasattr(predictions, "tolist"):
        predictions = predictions.tolist()
    if not isinstance(predictions, (list, tuple)):
        raise RequestError("bad_predictions",
                           f"predict returned a {type(predictions).__name__}, expected a list")
    if len(predictions) != count:
        raise RequestError("bad_predictions", f"predict returned {len(predictions)} predictions "
                           f"for {count} instances")
    try:
        return json.dumps({"predictions": list(predictions)}, default=_jsonable,
                          allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise RequestError("bad_predictions", f"the predictions are not valid JSON: {e}") from None


def invoke(model, instances, lock=None):
    """Returns the 200 body of POST /invocations for `instances` (a non-empty list of row
    dicts): model.predict(instances), under `lock` when given, encoded by encode_predictions.

    The server and the runner's batch `predict` both answer through here, so the same rows give
    the same document either way. Raises RequestError("prediction_failed") when predict raises
    (its traceback goes to stderr), or RequestError("bad_predictions").
    """
    try:
        if lock is None:
            predictions = model.predict(instances)
        else:
            with lock:
                predictions = model.predict(instances)
    except Exception as e:  # the user's predict: report it, the caller decides what follows
        traceback.print_exc()
        sys.stderr.flush()
        raise RequestError("prediction_failed",
                           traceback.format_exception_only(type(e), e)[-1].strip()) from None
    return encode_predictions(predictions, len(instances))


def load_model(cls, model_dir):
    """Returns a loaded model: cls(), then load(model_dir). Exceptions propagate."""
    model = cls()
    model.load(model_dir)
    return model


def _make_handler(model, lock, max_body_bytes):
    class Handler(BaseHTTPRequestHandler):
        server_version = "ferry_model/0.1"
        # Keep-alive: ferry's worker pool sends every request of a connection it keeps open
        # (every response has a Content-Length, so HTTP/1.1 framing holds).
        protocol_version = "HTTP/1.1"
        timeout = 60  # a silent client does not hold a thread forever

        def _send(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _error(self, code, message):
            if not self._body_read:
                # Whatever body the request has is unread: the stream is out of step.
                self.close_connection = True
            body = json.dumps({"error": {"code": code, "message": message}}).encode()
            self._send(ERRORS[code][0], body)

        def _route(self):
            return self.path.split("?", 1)[0]

        def parse_request(self):
            self._body_read = False  # per request of a kept-alive connection
            return super().parse_request()

        def do_GET(self):
            if self._route() == "/ping":
                self._send(200, b'{"status": "ok"}')
            elif self._route() == "/invocations":
                self._error("method_not_allowed", "use POST /invocations")
            else:
                self._error("not_found", f"no route {self._route()}: GET /ping, POST /invocations")

        def do_POST(self):
            if self._route() == "/ping":
                self._error("method_not_allowed", "use GET /ping")
                return
            if self._route() != "/invocations":
                self._error("not_found", f"no route {self._route()}: GET /ping, POST /invocations")
                return
            try:
                body = self._read_body()
                instances = parse_instances(body, self.headers.get("Content-Type"))
                self._send(200, invoke(model, instances, lock))
            except RequestError as e:
                self._error(e.code, e.message)

        def _read_body(self):
            if self.headers.get("Content-Length") is None:
                raise RequestError("length_required", "send a Content-Length header")
            try:
                length = int(self.headers["Content-Length"])
                if length < 0:
                    raise ValueError
            except ValueError:
                raise RequestError("bad_request", "Content-Length is not a number") from None
            if length > max_body_bytes:
                self.close_connection = True
                if length <= _DRAIN_LIMIT:
                    left = length
                    while left > 0:
                        chunk = self.rfile.read(min(left, 1 << 20))
                        if not chunk:
                            break
                        left -= len(chunk)
                raise RequestError("payload_too_large", f"the body is {length} bytes, more than "
                                   f"the limit of {max_body_bytes} (split the batch)")
            body = self.rfile.read(length)
            if len(body) != length:
                raise RequestError("bad_request", f"the body ended after {len(body)} of {length} "
                                   "bytes")
            self._body_read = True
            return body

        def _not_allowed(self):
            self._error("method_not_allowed", "GET /ping, POST /invocations")

        do_PUT = do_DELETE = do_PATCH = _not_allowed

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for the requests in flight
    block_on_close = True
    allow_reuse_address = True


def serve(cls, model_dir, host="127.0.0.1", port=8080, max_body_bytes=6 * 1024 * 1024):
    """Loads `cls` from `model_dir` and serves it until SIGTERM/SIGINT; returns the exit code
    (0 after a signal, 1 when the model cannot be loaded or the address cannot be bound).
    Must run on the main thread (it installs signal handlers)."""
    try:
        model = load_model(cls, model_dir)
    except Exception as e:
        traceback.print_exc()
        print(f"ferry_model: cannot load {cls.__name__} from {model_dir}: "
              f"{traceback.format_exception_only(type(e), e)[-1].strip()}", file=sys.stderr)
        return 1
    lock = None if getattr(cls, "thread_safe", False) else threading.Lock()
    server_class = _Server
    if ":" in host:
        server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
    try:
        httpd = server_class((host, port), _make_handler(model, lock, max_body_bytes))
    except OSError as e:
        print(f"ferry_model: cannot listen on {host}:{port}: {e}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def on_signal(signum, frame):
        # shutdown() waits for serve_forever to return, so it cannot run on this (main) thread.
        if not stopping.is_set():
            stopping.set()
            print(f"ferry_model: {signal.Signals(signum).name}: finishing the requests in "
                  "flight", flush=True)
            threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"listening on {host}:{httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
    print("ferry_model: stopped", flush=True)
    return 0
