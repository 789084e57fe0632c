"""Extracts customers (here: generates them, seeded) into customers.csv."""
import math
import random

from common import output, params, write_csv

p = params()
rng = random.Random(int(p["seed"]))
plans = ["basic", "plus", "pro"]
rows = []
for i in range(int(p["rows"])):
    tenure = rng.randint(1, 72)
    plan = rng.choice(plans)
    charges = round(rng.uniform(20, 120), 2)
    tickets = rng.randint(0, 6)
    score = -2.0 - 0.04 * tenure + 0.02 * charges + 0.5 * tickets + (0.6 if plan == "basic" else 0)
    churned = int(rng.random() < 1 / (1 + math.exp(-score)))
    rows.append({"id": i, "tenure": tenure, "plan": plan, "charges": charges,
                 "tickets": tickets, "churned": churned})
write_csv(output("customers.csv"), rows, list(rows[0]))
print(f"extracted {len(rows)} customers (snapshot {p['snapshot']})")
