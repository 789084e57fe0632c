"""Sends churn rows to a running `ferry serve` (standard library only): the quick start's client.

    python3 clients/invoke.py --port 8080                 # three rows; prints their predictions
    python3 clients/invoke.py --port 8080 --seconds 5     # traffic for 5 s; prints a summary

Each answer carries the model version and variant that answered and a transaction id (also the
X-Ferry-Transaction-Id header) under which the inference log keeps the row."""

import argparse
import collections
import http.client
import json
import random
import time

PLANS = ["basic", "plus", "pro"]


def row(rng):
    return {"tenure": rng.randint(1, 72), "plan": rng.choice(PLANS),
            "charges": round(rng.uniform(20, 120), 2), "tickets": rng.randint(0, 6)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)

    def invoke(r):
        conn.request("POST", "/invocations", json.dumps({"instances": [r]}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())

    if a.seconds <= 0:
        for _ in range(3):
            r = row(rng)
            status, doc = invoke(r)
            if status != 200:
                raise SystemExit("HTTP {}: {}".format(status, doc))
            p = doc["predictions"][0]
            m = doc["model"]
            print("  {}  {}:{} ({:<5})  p(churn)={:.3f}  {}".format(
                doc["transaction_id"], m["name"], m["version"], m["variant"],
                p["probabilities"]["1"], json.dumps(r)))
        return
    seen = collections.Counter()
    end = time.monotonic() + a.seconds
    while time.monotonic() < end:
        status, doc = invoke(row(rng))
        key = "{}:{} {}".format(doc["model"]["name"], doc["model"]["version"],
                                doc["model"]["variant"]) if status == 200 else "HTTP {}".format(status)
        seen[key] += 1
    print("  sent {} requests: {}".format(sum(seen.values()), ", ".join(
        "{} answered by {}".format(n, k) for k, n in seen.most_common())))


if __name__ == "__main__":
    main()
