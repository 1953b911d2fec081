"""Alarms (deny spike, limiter errors, sink failures and lag, audit gaps, state incidents, failed
batches, heartbeat failures) and the dashboard.

Decision counts and per-rule rate-limit checks come from metric filters on the authorizer's
audit lines (the same JSON lines the subscription filter forwards): the handler writes no EMF
line on the common path, which keeps CloudWatch Logs ingestion per decision small.
Limiter errors use the authorizer's EMF metric ``RateLimiterErrors`` (namespace ``Gatekeeper``,
dimension ``service=authorizer``); the sink's ``ChainGaps`` and ``StateIncidents`` are EMF
metrics of ``functions/audit_sink/handler.py`` (namespace ``Gatekeeper``,
dimension ``service=audit-sink``).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

AUDIT_NAMESPACE = "Gatekeeper/Audit"
EMF_NAMESPACE = "Gatekeeper"  # Metrics(namespace=...) of the functions
SINK_SERVICE = "audit-sink"  # Metrics(service=...) of functions/audit_sink/handler.py
DECISIONS = ("allow", "deny", "unauthorized")


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        authorizer_fn: lambda_.Function,
        authorizer_logs: logs.LogGroup,
        sink_fn: lambda_.Function,
        failure_bucket: s3.IBucket,
        failure_metrics_id: str,
        heartbeat_rule: events.IRule,
        topic: sns.ITopic,
        deny_spike_threshold: int,
    ) -> None:
        super().__init__(scope, construct_id)
        period = Duration.minutes(5)
        self.decision_metrics: dict[str, cw.Metric] = {}
        for decision in DECISIONS:
            name = f"Decisions{decision.title()}"
            logs.MetricFilter(
                self,
                f"{name}Filter",
                log_group=authorizer_logs,
                metric_namespace=AUDIT_NAMESPACE,
                metric_name=name,
                metric_value="1",
                default_value=0,
                filter_pattern=logs.FilterPattern.string_value("$.audit.decision", "=", decision),
            )
            self.decision_metrics[decision] = cw.Metric(
                namespace=AUDIT_NAMESPACE, metric_name=name, statistic="Sum", period=period
            )
        # Per-rule checks, from the audit line's rate-limit block (the handler writes EMF only
        # for rejections and errors, so the common path costs no extra log bytes).
        logs.MetricFilter(
            self,
            "RateLimitChecksFilter",
            log_group=authorizer_logs,
            metric_namespace=AUDIT_NAMESPACE,
            metric_name="RateLimitChecks",
            metric_value="1",
            filter_pattern=logs.FilterPattern.exists("$.audit.rate_limit.rule_id"),
            dimensions={"rule": "$.audit.rate_limit.rule_id"},
        )
        limiter_errors = cw.Metric(
            namespace="Gatekeeper",
            metric_name="RateLimiterErrors",
            dimensions_map={"service": "authorizer"},
            statistic="Sum",
            period=period,
        )
        chain_gaps, state_incidents = (
            cw.Metric(
                namespace=EMF_NAMESPACE,
                metric_name=name,
                dimensions_map={"service": SINK_SERVICE},
                statistic="Sum",
                period=period,
            )
            for name in ("ChainGaps", "StateIncidents")
        )
        # S3 request metrics (the bucket's metrics configuration): objects Lambda wrote there
        failed_batches = cw.Metric(
            namespace="AWS/S3",
            metric_name="PutRequests",
            dimensions_map={
                "BucketName": failure_bucket.bucket_name,
                "FilterId": failure_metrics_id,
            },
            statistic="Sum",
            period=period,
        )
        heartbeat_failures = cw.Metric(
            namespace="AWS/Events",
            metric_name="FailedInvocations",
            dimensions_map={"RuleName": heartbeat_rule.rule_name},
            statistic="Sum",
            period=period,
        )
        action = cw_actions.SnsAction(topic)
        # (id, description, metric, threshold, evaluation periods): each fires above its threshold
        specs: list[tuple[str, str, cw.IMetric, float, int]] = [
            (
                "DenySpike",
                "More denials than usual: attack, broken client or bad rule",
                self.decision_metrics["deny"],
                deny_spike_threshold,
                1,
            ),
            (
                "LimiterErrors",
                "The rate limiter could not reach its counters table",
                limiter_errors,
                0,
                1,
            ),
            (
                "AuthorizerErrors",
                "Authorizer invocations failed (API Gateway answers 500)",
                authorizer_fn.metric_errors(period=period),
                0,
                1,
            ),
            (
                "SinkFailures",
                "audit_sink invocations failed",
                sink_fn.metric_errors(period=period),
                0,
                1,
            ),
            (
                "SinkLag",
                "audit_sink is more than 15 minutes behind the stream",
                sink_fn.metric("IteratorAge", statistic="Maximum", period=period),
                15 * 60 * 1000,
                2,
            ),
            (
                "ChainGaps",
                "The audit stream's mapping gave up on records: a gap in the archive's chain "
                "until `gatekeeper archive replay` sends them back",
                chain_gaps,
                0,
                1,
            ),
            (
                "StateIncidents",
                "An archive chain state was missing or forged and was rebuilt from the newest "
                "digest: find out who wrote it",
                state_incidents,
                0,
                1,
            ),
            (
                "FailedBatches",
                "The audit stream's mapping wrote failed batches to the failed-batches bucket: "
                "replay them (`gatekeeper archive replay --from s3://BUCKET/`)",
                failed_batches,
                0,
                1,
            ),
            (
                "FailedBatchDeliveries",
                "Lambda could not write a failed batch to its on-failure destination: those "
                "records exist nowhere else once the stream drops them",
                sink_fn.metric("DestinationDeliveryFailures", statistic="Sum", period=period),
                0,
                1,
            ),
            (
                "HeartbeatFailures",
                "EventBridge could not invoke the audit sink's heartbeat: idle chains get no "
                "digest and `archive verify` will report them STALE",
                heartbeat_failures,
                0,
                1,
            ),
        ]
        self.alarms = [
            cw.Alarm(
                self,
                name,
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            for name, description, metric, threshold, periods in specs
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(action)

        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name="Gatekeeper")
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Decisions",
                left=list(self.decision_metrics.values()),
                width=12,
            ),
            cw.GraphWidget(
                title="Authorizer latency (ms)",
                left=[
                    authorizer_fn.metric_duration(statistic="p50", period=period),
                    authorizer_fn.metric_duration(statistic="p99", period=period),
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Errors",
                left=[
                    authorizer_fn.metric_errors(period=period),
                    sink_fn.metric_errors(period=period),
                    limiter_errors,
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Audit pipeline",
                left=[sink_fn.metric("IteratorAge", statistic="Maximum", period=period)],
                right=[chain_gaps, state_incidents, failed_batches, heartbeat_failures],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24)
        )
