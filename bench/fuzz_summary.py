"""Summarises a schemathesis NDJSON event log: requests sent, answers by status class,
5xx answers, and failed checks by name (unique test cases)."""

import collections
import json
import sys

requests = 0
statuses = collections.Counter()
failed = collections.defaultdict(set)
for line in open(sys.argv[1]):
    event = json.loads(line)
    finished = event.get("ScenarioFinished")
    if not finished:
        continue
    recorder = finished["recorder"]
    for interaction in recorder.get("interactions", {}).values():
        requests += 1
        response = interaction.get("response")
        status = response["status_code"] if response else None
        statuses[f"{status // 100}xx" if status else "no answer"] += 1
    for case_id, checks in recorder.get("checks", {}).items():
        for check in checks:
            if check["status"] == "failure":
                failed[check["name"]].add(case_id)

print(f"requests: {requests}")
print("answers: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
print(f"5xx: {statuses.get('5xx', 0)}")
if failed:
    for name, cases in sorted(failed.items()):
        print(f"failed check {name}: {len(cases)} test case(s)")
else:
    print("failed checks: none")
