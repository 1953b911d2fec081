"""``gatekeeper archive replay``: archive what the audit stream's event source mapping gave up on.

When the sink cannot archive a batch for longer than the mapping's retries (or record age)
allow — a long S3 or KMS outage — the mapping writes an on-failure record and moves on; the
sink's chain records a gap (``archive verify`` reports it). This command sends each on-failure
record to the sink function, which archives the records and closes the gap:

- ``--from s3://BUCKET/PREFIX``: an S3 on-failure destination keeps the whole invocation
  (``payload``), so the records can be replayed at any time;
- ``--from sqs://QUEUE_URL``: an SQS (or SNS) destination keeps only the batch's shard and
  sequence numbers (``KinesisBatchInfo``): the records are read back from the stream, which
  works only while the stream still retains them (24 h by default). A replayed message is
  deleted from the queue; one that could not be replayed stays.

Replaying twice is harmless (event ids and write-once keys). Exit 1 if anything was not
replayed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gatekeeper.commands._admin import client, common_options, print_json
from gatekeeper.commands._errors import UsageError


def add_replay_parser(actions: Any) -> None:
    """Adds ``replay`` to the ``archive`` command's actions."""
    replay: argparse.ArgumentParser = actions.add_parser(
        "replay",
        parents=[common_options()],
        help="archive the records the audit stream's event source mapping gave up on",
        description="Sends each on-failure record of the audit sink's event source mapping to "
        "the sink function, which archives its records and closes the chain's gap. "
        "s3:// (an S3 destination, with payloads) or sqs:// (batch info only: the records are "
        "read back from the stream while it retains them).",
    )
    replay.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="s3://BUCKET/PREFIX|sqs://QUEUE_URL",
        help="the mapping's on-failure destination",
    )
    replay.add_argument(
        "--function",
        default=os.environ.get("GATEKEEPER_AUDIT_SINK_FUNCTION"),
        help="the audit sink function (default: $GATEKEEPER_AUDIT_SINK_FUNCTION, else the stack "
        "outputs' AuditSinkFunctionName)",
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="list what would be replayed, send nothing"
    )
    replay.set_defaults(func=run_replay)


@dataclass
class Failure:
    """One on-failure record: where it is, and the invocation to send (None: unreadable)."""

    where: str
    info: dict[str, Any]
    record: dict[str, Any] | None
    error: str | None = None
    receipt: str | None = None


def run_replay(args: argparse.Namespace) -> int:
    if not args.function and not args.dry_run:
        raise UsageError(
            "no sink function: pass --function, set GATEKEEPER_AUDIT_SINK_FUNCTION "
            "or --stack-outputs"
        )
    source: str = args.source
    if source.startswith("s3://"):
        failures = list(_from_s3(client(args, "s3"), source))
        queue = None
    elif source.startswith("sqs://"):
        queue = "https://" + source.removeprefix("sqs://")
        sqs = client(args, "sqs")
        failures = list(_from_sqs(sqs, client(args, "kinesis"), queue))
    else:
        raise UsageError(f"--from {source!r}: use s3://BUCKET/PREFIX or sqs://QUEUE_URL")
    lam = None if args.dry_run else client(args, "lambda")
    results: list[dict[str, Any]] = []
    failed = 0
    for failure in failures:
        info = failure.info
        row: dict[str, Any] = {
            "source": failure.where,
            "shard": info.get("shardId"),
            "first": info.get("startingSequenceNumber"),
            "last": info.get("endingSequenceNumber"),
        }
        if failure.record is None:
            row["error"] = failure.error
            failed += 1
        elif lam is not None:
            answer, error = _invoke(lam, args.function, failure.record)
            row.update(answer)
            if error is not None:
                row["error"] = error
                failed += 1
            elif queue is not None and failure.receipt is not None:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=failure.receipt)
        results.append(row)
    if args.json:
        print_json({"replayed": len(results) - failed, "failed": failed, "records": results})
    else:
        for row in results:
            status = row.get("error") or (
                "would replay" if args.dry_run else f"{row.get('replayed', 0)} event(s) archived"
            )
            print(f"{row['source']}  {row['shard']} {row['first']}..{row['last']}: {status}")
        verb = "to replay" if args.dry_run else "replayed"
        print(f"{len(results) - failed} on-failure record(s) {verb}, {failed} failed")
    return 1 if failed else 0


def _invoke(lam: Any, function: str, record: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    response = lam.invoke(
        FunctionName=function,
        InvocationType="RequestResponse",
        Payload=json.dumps(record).encode(),
    )
    body = response["Payload"].read()
    try:
        answer = json.loads(body) if body else {}
    except ValueError:
        answer = {}
    if response.get("FunctionError"):
        message = answer.get("errorMessage") if isinstance(answer, dict) else None
        return {}, f"the sink failed: {message or response['FunctionError']}"
    return (answer if isinstance(answer, dict) else {}), None


def _from_s3(s3: Any, source: str) -> Iterator[Failure]:
    bucket, _, prefix = source.removeprefix("s3://").partition("/")
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            where = f"s3://{bucket}/{key}"
            try:
                record = json.loads(body)
            except ValueError:
                yield Failure(where, {}, None, "not JSON: not an on-failure record")
                continue
            info = record.get("KinesisBatchInfo") if isinstance(record, dict) else None
            if not isinstance(info, dict):
                yield Failure(where, {}, None, "no KinesisBatchInfo: not an on-failure record")
            elif record.get("payload") is None:
                yield Failure(where, info, None, "no payload: read it from the stream (sqs://)")
            else:
                yield Failure(where, info, record)


def _from_sqs(sqs: Any, kinesis: Any, queue: str) -> Iterator[Failure]:
    """Every message of the queue (hidden for 5 minutes while replayed)."""
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=300, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return
        for message in messages:
            where = f"sqs message {message['MessageId']}"
            try:
                body = json.loads(message["Body"])
                if isinstance(body, dict) and "Message" in body:  # through SNS
                    body = json.loads(body["Message"])
                info = body["KinesisBatchInfo"]
            except (ValueError, KeyError, TypeError):
                yield Failure(where, {}, None, "not an on-failure record")
                continue
            try:
                payload = {"Records": list(_read_back(kinesis, info))}
            except Exception as exc:
                error = f"cannot read the records back from the stream: {exc}"
                yield Failure(where, info, None, error, message["ReceiptHandle"])
                continue
            if not payload["Records"]:
                error = "the stream no longer holds these records (past its retention)"
                yield Failure(where, info, None, error, message["ReceiptHandle"])
                continue
            record = dict(body, payload=json.dumps(payload))
            yield Failure(where, info, record, receipt=message["ReceiptHandle"])


def _read_back(kinesis: Any, info: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The batch's records, from the stream, as the event source mapping delivers them."""
    arn, shard = info["streamArn"], info["shardId"]
    first, last = int(info["startingSequenceNumber"]), int(info["endingSequenceNumber"])
    iterator = kinesis.get_shard_iterator(
        StreamARN=arn,
        ShardId=shard,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=str(first),
    )["ShardIterator"]
    region = arn.split(":")[3]
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=1000, StreamARN=arn)
        for item in page["Records"]:
            seq = int(item["SequenceNumber"])
            if seq > last:
                return
            yield {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": item["PartitionKey"],
                    "sequenceNumber": item["SequenceNumber"],
                    "data": base64.b64encode(item["Data"]).decode(),
                    "approximateArrivalTimestamp": item["ApproximateArrivalTimestamp"].timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard}:{item['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "awsRegion": region,
                "eventSourceARN": arn,
            }
        if not page["Records"] and not page.get("MillisBehindLatest"):
            return
        iterator = page.get("NextShardIterator")
