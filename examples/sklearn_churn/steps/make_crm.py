"""Generates the example's source database, data/crm.db (SQLite), from a seed: the same
parameters give the same rows. In a real project this database is your CRM or warehouse.
(The same script as examples/quickstart/steps/make_crm.py.)"""
import json
import math
import os
import random
import sqlite3

with open(os.environ["FERRY_PARAMS"]) as f:
    p = json.load(f)
rng = random.Random(int(p["seed"]))
path = os.path.join(os.environ["FERRY_PROJECT_DIR"], "data", "crm.db")
os.makedirs(os.path.dirname(path), exist_ok=True)
tmp = path + ".tmp"
if os.path.exists(tmp):
    os.remove(tmp)
db = sqlite3.connect(tmp)
db.execute("""CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY, signup_date TIMESTAMP NOT NULL, tenure INTEGER,
    plan TEXT NOT NULL, charges REAL NOT NULL, tickets INTEGER NOT NULL, churned INTEGER NOT NULL)""")
plans = ["basic", "plus", "pro"]
rows = []
for i in range(int(p["rows"])):
    tenure = rng.randint(1, 72)
    plan = rng.choice(plans)
    charges = round(rng.uniform(20, 120), 2)
    tickets = rng.randint(0, 6)
    score = -2.0 - 0.04 * tenure + 0.02 * charges + 0.5 * tickets + (0.6 if plan == "basic" else 0)
    churned = int(rng.random() < 1 / (1 + math.exp(-score)))
    signup = f"20{19 + i % 7}-{1 + i % 12:02d}-{1 + i % 28:02d}"
    # About 2% of tenures are missing, as in real exports: the transform imputes them.
    rows.append((i + 1, signup, None if rng.random() < 0.02 else tenure, plan, charges, tickets,
                 churned))
db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
db.commit()
db.close()
os.replace(tmp, path)
print(f"source database {path}: {len(rows)} customers")
