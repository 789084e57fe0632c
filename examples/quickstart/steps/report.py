"""Prints the evaluation as a small table and writes report.md."""
import json
import os

with open(os.path.join(os.environ["SM_CHANNEL_EVALUATE"], "metrics.json")) as f:
    m = json.load(f)
lines = ["| model | accuracy | log loss |", "|---|---|---|"]
for name, v in m["models"].items():
    mark = " (best)" if name == m["best"] else ""
    lines.append(f"| {name}{mark} | {v['accuracy']} | {v['log_loss']} |")
text = "\n".join(lines) + "\n"
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "report.md"), "w") as f:
    f.write(text)
print(text)
