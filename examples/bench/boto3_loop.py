"""The issue's baseline for cold convergence: a plain boto3 loop making only the Create calls,
one after the other, with no reads and no rate limit. Afterwards (not timed) it deletes what it
created.

It sends the very requests the bench's Rust plain loop sent (JSON lines of {"target", "body"}:
for AWS's JSON protocol the body is the operation's input as boto3 takes it), with FROM
replaced by TO in every body so the names are new. Clients are built before the clock starts.

usage: boto3_loop.py ENDPOINT REGION REQUESTS.jsonl FROM TO
prints one JSON line: {"elapsed": seconds, "calls": {operation: count}}
"""

import json
import sys
import time

import boto3
from botocore import xform_name

# X-Amz-Target prefixes (botocore service models, metadata.targetPrefix).
SERVICES = {"CodeBuild_20161006": "codebuild", "CodePipeline_20150709": "codepipeline"}


def main() -> None:
    endpoint, region, path, old, new = sys.argv[1:6]
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )
    clients = {
        prefix: session.client(service, endpoint_url=endpoint)
        for prefix, service in SERVICES.items()
    }
    calls = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            request = json.loads(line)
            prefix, operation = request["target"].split(".", 1)
            params = json.loads(request["body"].replace(old, new))
            calls.append((getattr(clients[prefix], xform_name(operation)), operation, params))
    counts: dict[str, int] = {}
    started = time.monotonic()
    for call, operation, params in calls:
        call(**params)
        counts[operation] = counts.get(operation, 0) + 1
    elapsed = time.monotonic() - started
    delete_created(clients, calls)
    print(json.dumps({"elapsed": elapsed, "calls": counts}))


def delete_created(clients: dict, calls: list) -> None:
    """Deletes what the loop created (not timed), so the controller's cold phase that follows
    meets the same account as without this loop: the Rust loop's resources, no more."""
    for _, operation, params in calls:
        if operation == "CreatePipeline":
            clients["CodePipeline_20150709"].delete_pipeline(name=params["pipeline"]["name"])
        elif operation == "CreateProject":
            clients["CodeBuild_20161006"].delete_project(name=params["name"])


if __name__ == "__main__":
    main()
