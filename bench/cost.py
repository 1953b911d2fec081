"""Cost per million decisions: what one decision produces, times the list prices of prices.csv.

Only ``bench/prices.csv`` holds prices (with their date); everything else here is a quantity,
either measured by ``bench/run.py`` (bytes logged, billed time, DynamoDB calls, sink events/s)
or a stated deployment fact (memory, architecture, log format, tracing). Fixed monthly costs
(a Kinesis stream's hours, custom-metric months, log storage) do not scale with decisions and
are left out; so is API Gateway's own request fee.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

PRICES_FILE = Path(__file__).with_name("prices.csv")

# Lambda's platform lines in the text log format (START, END, REPORT, and XRAY with active
# tracing), sized from the documented formats with real ids; none at all with the JSON log
# format and the system log level raised to WARN (start/report events are INFO).
TEXT_PLATFORM_LINES = (
    "START RequestId: 8f507cfc-1a2b-4697-b07a-ac58fc914c95 Version: $LATEST",
    "END RequestId: 8f507cfc-1a2b-4697-b07a-ac58fc914c95",
    "REPORT RequestId: 8f507cfc-1a2b-4697-b07a-ac58fc914c95\tDuration: 1.74 ms\t"
    "Billed Duration: 2 ms\tMemory Size: 1024 MB\tMax Memory Used: 96 MB\t",
    "XRAY TraceId: 1-5e34a614-10bd1fb44f07bc535a1b2c3d\tSegmentId: 07f52d9c1a2b3c4d\t"
    "Sampled: false\t",
)


def prices(path: Path = PRICES_FILE) -> tuple[dict[str, float], str]:
    """``{item: usd}`` and the table's date (every row carries the same ``as_of``)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    dates = {row["as_of"] for row in rows}
    return {row["item"]: float(row["usd"]) for row in rows}, ", ".join(sorted(dates))


@dataclass(frozen=True)
class Usage:
    """What one decision produces (per decision, not per million)."""

    app_log_bytes: float  # audit line + metrics (EMF) lines + anything else the function prints
    platform_log_bytes: float  # Lambda's own lines (0 with JSON format + system level WARN)
    billed_ms: float  # Lambda bills in 1 ms steps
    memory_mb: int
    arch: str  # arm64 | x86_64
    dynamodb_writes: float  # request units per decision (counter updates)
    dynamodb_reads: float  # config version checks, strongly consistent, per decision
    kinesis_bytes: float  # audit bytes reaching the stream (gzip'd by the subscription)
    sink_seconds: float  # audit sink Lambda time per event (1 / events per second)
    sink_memory_mb: int
    traced_fraction: float  # X-Ray traces recorded per decision (0 without active tracing)


def line_items(usage: Usage, table: dict[str, float]) -> dict[str, float]:
    """$ per million decisions, by item."""
    gb = 1024**3
    gb_second = table[f"lambda_gb_second_{usage.arch}"]
    logs = usage.app_log_bytes + usage.platform_log_bytes
    return {
        "Lambda requests": table["lambda_request"],
        "Lambda duration": usage.billed_ms / 1000 * usage.memory_mb / 1024 * gb_second * 1e6,
        "CloudWatch Logs ingestion": logs / gb * table["cloudwatch_logs_ingestion"] * 1e6,
        "DynamoDB": usage.dynamodb_writes * table["dynamodb_write_request_unit"]
        + usage.dynamodb_reads * table["dynamodb_read_request_unit"],
        "Kinesis (audit stream)": usage.kinesis_bytes
        / gb
        * (table["kinesis_on_demand_ingest"] + table["kinesis_on_demand_retrieval"])
        * 1e6,
        "audit sink Lambda": usage.sink_seconds
        * usage.sink_memory_mb
        / 1024
        * table[f"lambda_gb_second_{usage.arch}"]
        * 1e6,
        "X-Ray traces": usage.traced_fraction * table["xray_trace_recorded"],
    }


def billed_ms(measured_ms: float) -> float:
    return float(max(1, math.ceil(measured_ms)))


def text_platform_bytes(traced: bool) -> int:
    lines = TEXT_PLATFORM_LINES if traced else TEXT_PLATFORM_LINES[:3]
    return sum(len(line) + 1 for line in lines)
