"""Simulates a week of churn traffic and its outcomes for the quick start's monitoring demo
(standard library only).

    python3 clients/simulate_week.py traffic --out .ferry/week           # 7 daily CSV files
    python3 clients/simulate_week.py outcomes --scored .ferry/week/scored --out outcomes.csv

`traffic` writes one file per UTC day of the last seven days (today excluded), rows shaped like
the CRM's customers with a `ts` column giving each row's time. One feature drifts: `charges` rises
by about 12 a day, as if a price change reached new customers. `ferry batch ... --time-column ts
--log-endpoint churn-week` scores them and files each row in the endpoint's inference log at its time.

`outcomes` reads the scored files (they carry each row's prediction and transaction id) and
writes what "really happened": on day k of the week the outcome agrees with the prediction with
probability 0.92 - 0.04 k, so the model's accuracy falls by about 4 points a day, which is the
degradation rate `ferry monitor` should recover from the labels."""

import argparse
import csv
import datetime as dt
import glob
import os
import random

PLANS = ["basic", "plus", "pro"]
DAYS = 7


def traffic(args):
    rng = random.Random(args.seed)
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    os.makedirs(args.out, exist_ok=True)
    customer = 100000
    for k in range(DAYS):
        day = today - dt.timedelta(days=DAYS - k)
        path = os.path.join(args.out, f"day-{day:%Y-%m-%d}.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["customer_id", "signup_date", "tenure", "plan", "charges", "tickets", "ts"])
            for _ in range(args.rows):
                customer += 1
                at = day + dt.timedelta(seconds=rng.randrange(86400))
                charges = round(rng.uniform(20, 120) + 12 * k, 2)
                w.writerow([customer, f"{day:%Y-%m-%d}", rng.randint(1, 72), rng.choice(PLANS),
                            charges, rng.randint(0, 6), at.strftime("%Y-%m-%dT%H:%M:%SZ")])
        print(f"  {path}: {args.rows} rows")


def outcomes(args):
    rng = random.Random(args.seed)
    files = sorted(glob.glob(os.path.join(args.scored, "day-*.csv")))
    if not files:
        raise SystemExit(f"no scored files day-*.csv in {args.scored}")
    n = 0
    with open(args.out, "w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["transaction_id", "churned"])
        for k, path in enumerate(files):
            agree = 0.92 - 0.04 * k
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    predicted = int(row["prediction"])
                    truth = predicted if rng.random() < agree else 1 - predicted
                    w.writerow([row["transaction_id"], truth])
                    n += 1
    print(f"  {args.out}: {n} outcomes over {len(files)} days")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("traffic")
    t.add_argument("--out", required=True)
    t.add_argument("--rows", type=int, default=3000)
    t.add_argument("--seed", type=int, default=11)
    o = sub.add_parser("outcomes")
    o.add_argument("--scored", required=True)
    o.add_argument("--out", required=True)
    o.add_argument("--seed", type=int, default=12)
    args = ap.parse_args()
    traffic(args) if args.cmd == "traffic" else outcomes(args)


if __name__ == "__main__":
    main()
