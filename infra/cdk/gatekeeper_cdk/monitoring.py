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
        self.alarms = [
            cw.Alarm(
                self,
                "DenySpike",
                alarm_description="More denials than usual: attack, broken client or bad rule",
                metric=self.decision_metrics["deny"],
                threshold=deny_spike_threshold,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "LimiterErrors",
                alarm_description="The rate limiter could not reach its counters table",
                metric=limiter_errors,
                threshold=0,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "AuthorizerErrors",
                alarm_description="Authorizer invocations failed (API Gateway answers 500)",
                metric=authorizer_fn.metric_errors(period=period),
                threshold=0,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "SinkFailures",
                alarm_description="audit_sink invocations failed",
                metric=sink_fn.metric_errors(period=period),
                threshold=0,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "SinkLag",
                alarm_description="audit_sink is more than 15 minutes behind the stream",
                metric=sink_fn.metric("IteratorAge", statistic="Maximum", period=period),
                threshold=15 * 60 * 1000,
                evaluation_periods=2,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "DlqDepth",
                alarm_description="Audit records were given up on: replay them from the DLQ",
                metric=dlq.metric_approximate_number_of_messages_visible(
                    period=period, statistic="Maximum"
                ),
                threshold=0,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
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
