"""Alarms (deny spike, limiter errors, sink failures, DLQ depth) and the dashboard.

Decision counts come from metric filters on the authorizer's audit lines (the same JSON lines
the subscription filter forwards), so they do not depend on the handler's EMF metric names.
Limiter errors use the authorizer's EMF metric ``RateLimiterErrors`` (namespace ``Gatekeeper``,
dimension ``service=authorizer``).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

AUDIT_NAMESPACE = "Gatekeeper/Audit"
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
        dlq: sqs.Queue,
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
        limiter_errors = cw.Metric(
            namespace="Gatekeeper",
            metric_name="RateLimiterErrors",
            dimensions_map={"service": "authorizer"},
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
                "DlqDepth",
                "Audit records were given up on: replay them from the DLQ",
                dlq.metric_approximate_number_of_messages_visible(
                    period=period, statistic="Maximum"
                ),
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
                right=[dlq.metric_approximate_number_of_messages_visible(period=period)],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24)
        )
