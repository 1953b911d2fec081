"""The Gatekeeper suite in one stack.

Data: config + counters tables, the audit stream, the archive bucket (Object Lock enabled, each
write-once object locked by the sink as written), the failed-batches bucket (the event source
mapping's on-failure destination, replayable), all under one customer-managed KMS key; a second,
asymmetric key signs archive digests. Compute: the authorizer, audit_sink and admin functions
sharing one dependencies layer. Edges: the subscription filter (authorizer/admin audit lines ->
Kinesis), the sink's event source mapping, the sink's heartbeat schedule, the demo REST and HTTP
APIs, the IAM-authorized admin API, alarms and a dashboard.

Every function role is written out statement by statement (no ``grant*`` helpers, which add
``kms:GenerateDataKey*``-style wildcards): ``tests/infra`` checks each one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Aws, CfnElement, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from gatekeeper.audit import table_schema
from gatekeeper_cdk import bundling
from gatekeeper_cdk.authorizer_construct import DEFAULT_TENANT_HEADER, GatekeeperAuthorizer
from gatekeeper_cdk.demo_apis import AdminApi, DemoHttpApi, DemoRestApi
from gatekeeper_cdk.monitoring import Monitoring
from gatekeeper_cdk.nag import acknowledge

# gatekeeper.audit.archive.Layout under GATEKEEPER_AUDIT_PREFIX: events/dt=../hour=../ (OCSF
# JSON lines, the Athena table), quarantine/, digests/ (signed, chained) and state/ (chain heads).
ARCHIVE_PREFIX = "audit/"
ARCHIVE_AREAS = ("events/", "quarantine/", "digests/", "state/")
# Written once (If-None-Match: *) and locked as written; the state is rewritten every batch.
WRITE_ONCE_AREAS = ("events/", "quarantine/", "digests/")
STATE_AREA = "state/"
ARCHIVE_EVENTS_PREFIX = f"{ARCHIVE_PREFIX}events/"
ATHENA_RESULTS_PREFIX = "athena-results/"
AUDIT_FILTER_FIELD = "$.audit.event_id"  # every audit line has one; other log lines do not
HEARTBEAT_INPUT = {"gatekeeper": "heartbeat"}  # functions/audit_sink/handler.py is_heartbeat()
FAILED_BATCHES_METRICS_ID = "FailedBatches"  # S3 request metrics of the failed-batches bucket
AUDIT_DATABASE = "gatekeeper_audit"  # Glue database of the table table_schema.TABLE
ATHENA_DDL = bundling.REPO_ROOT / "infra" / "athena" / "audit_table.sql"  # the same table
RUNTIME = lambda_.Runtime.PYTHON_3_13
CUSTOM_RESOURCE_PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"  # AwsCustomResource
ARCHITECTURE = lambda_.Architecture.ARM_64


@dataclass(frozen=True)
class GatekeeperSettings:
    """Deployment knobs (``cdk.json`` context ``gatekeeper:*`` or constructor arguments)."""

    issuers_json: str = "[]"
    authorizer_cache_ttl_seconds: int = 0
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    # GATEKEEPER_AUDIT_OBJECT_LOCK_DAYS: compliance retention the sink sets on each write-once
    # object as it writes it (None: no retention). The bucket has Object Lock enabled either way
    # and never a default retention, which would lock every version of the chain state too.
    object_lock_days: int | None = 365
    # GATEKEEPER_AUDIT_DIGEST_INTERVAL_SECONDS; the heartbeat runs every half interval
    digest_interval_seconds: int = 3600
    # the one principal allowed to delete archive objects (what Object Lock still lets anyone)
    break_glass_role_arn: str | None = None
    failed_batches_retention_days: int = 90
    archive_glacier_ir_after_days: int = 90
    archive_deep_archive_after_days: int = 365
    retain_data: bool = True
    stream_shards: int = 1
    alarm_email: str | None = None
    deny_spike_threshold: int = 100
    demo_apis: bool = True
    rate_limit_response: str = "deny"  # "flag": the integration answers 429 (see README)
    # GATEKEEPER_TENANT_HEADER: also part of the authorizer cache key when caching is on
    tenant_header: str = DEFAULT_TENANT_HEADER
    extra_authorizer_env: dict[str, str] = field(default_factory=dict)


def _powertools_env(service: str) -> dict[str, str]:
    return {
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": "Gatekeeper",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


class GatekeeperStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: GatekeeperSettings | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.settings = cfg = settings or GatekeeperSettings()
        removal = RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY

        # --- keys ------------------------------------------------------------------------------
        self.data_key = kms.Key(
            self,
            "DataKey",
            description="Gatekeeper: tables, stream, archive, queue, topic and logs",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        self._allow_service_on_data_key(
            f"logs.{Aws.REGION}.amazonaws.com",
            extra_conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                    )
                }
            },
        )
        self._allow_service_on_data_key("cloudwatch.amazonaws.com")
        self.signing_key = kms.Key(
            self,
            "DigestSigningKey",
            description="Gatekeeper: signs hourly audit archive digests (SHA256withRSA)",
            key_spec=kms.KeySpec.RSA_2048,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=removal,
        )

        # --- tables ----------------------------------------------------------------------------
        self.config_table = self._table("ConfigTable", removal, ttl=False)
        self.counters_table = self._table("CountersTable", removal, ttl=True)

        # --- audit pipeline storage ------------------------------------------------------------
        self.stream = kinesis.Stream(
            self,
            "AuditStream",
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=self.data_key,
            shard_count=cfg.stream_shards,
            retention_period=Duration.hours(24),
        )
        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery cannot write SSE-KMS
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        )
        acknowledge(
            self.access_logs_bucket,
            "AwsSolutions-S1",
            "This is the server access log bucket; logging it into itself would loop.",
        )
        self._audit_buckets(removal)

        # --- functions -------------------------------------------------------------------------
        self.layer = lambda_.LayerVersion(
            self,
            "DepsLayer",
            code=bundling.layer_code(),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="gatekeeper package + runtime dependencies (manylinux aarch64)",
        )
        authorizer_env = {
            "GATEKEEPER_CONFIG_TABLE": self.config_table.table_name,
            "GATEKEEPER_COUNTERS_TABLE": self.counters_table.table_name,
            "GATEKEEPER_ISSUERS": cfg.issuers_json,
            "GATEKEEPER_RATE_LIMIT_RESPONSE": cfg.rate_limit_response,
            # the construct's cache key and the function must agree on these two
            "GATEKEEPER_TENANT_HEADER": cfg.tenant_header,
            "GATEKEEPER_HTTP_API_RESPONSE": "simple",
            **cfg.extra_authorizer_env,
        }
        self.authorizer_fn, self.authorizer_logs = self._function(
            "Authorizer",
            "authorizer",
            env=authorizer_env,
            memory=1024,  # RS256 + pydantic: CPU-bound; more memory = more CPU = lower latency
            timeout=Duration.seconds(10),
        )
        self.sink_fn, self.sink_logs = self._function(
            "AuditSink",
            "audit_sink",
            env=self._sink_env(),
            memory=512,
            timeout=Duration.seconds(60),
        )
        self.admin_fn, self.admin_logs = self._function(
            "Admin",
            "admin",
            env={
                "GATEKEEPER_CONFIG_TABLE": self.config_table.table_name,
                "GATEKEEPER_COUNTERS_TABLE": self.counters_table.table_name,
            },
            memory=512,
            timeout=Duration.seconds(29),
        )
        self._authorizer_permissions()
        self._sink_permissions()
        self._admin_permissions()
        self._archive_bucket_policy()

        # --- audit flow: log lines -> stream -> sink -------------------------------------------
        self._subscribe_to_stream(self.authorizer_logs, "AuthorizerAudit")
        self._subscribe_to_stream(self.admin_logs, "AdminAudit")
        self.event_source_mapping = lambda_.CfnEventSourceMapping(
            self,
            "AuditSinkStreamMapping",
            function_name=self.sink_fn.function_name,
            event_source_arn=self.stream.stream_arn,
            starting_position="TRIM_HORIZON",
            batch_size=100,
            maximum_batching_window_in_seconds=5,
            parallelization_factor=1,  # keeps per-shard order, which the hash chain relies on
            bisect_batch_on_function_error=True,
            function_response_types=["ReportBatchItemFailures"],
            maximum_retry_attempts=5,
            maximum_record_age_in_seconds=6 * 3600,
            # S3 keeps each failed batch whole (payload included): replayable at any time,
            # unlike SQS/SNS, which keep only shard and sequence numbers
            destination_config=lambda_.CfnEventSourceMapping.DestinationConfigProperty(
                on_failure=lambda_.CfnEventSourceMapping.OnFailureProperty(
                    destination=self.failure_bucket.bucket_arn
                )
            ),
        )
        # the mapping validates its role's permissions on creation
        assert self.sink_fn.role is not None
        self.event_source_mapping.node.add_dependency(self.sink_fn.role)

        self._heartbeat()

        self._athena_table()

        # --- APIs ------------------------------------------------------------------------------
        self.gatekeeper = GatekeeperAuthorizer(
            self,
            "Gatekeeper",
            function=self.authorizer_fn,
            results_cache_ttl=Duration.seconds(cfg.authorizer_cache_ttl_seconds),
            tenant_header=cfg.tenant_header,
            config_table=self.config_table,
            config_key=self.data_key,
            # pydantic's reading of the flag (gatekeeper.config.Settings.mtls)
            client_certificates=cfg.extra_authorizer_env.get("GATEKEEPER_MTLS", "").lower()
            in ("1", "true", "yes", "on", "t", "y"),
        )
        self.admin_api = AdminApi(self, "AdminApi", function=self.admin_fn, key=self.data_key)
        self.demo_rest: DemoRestApi | None = None
        self.demo_http: DemoHttpApi | None = None
        if cfg.demo_apis:
            self.demo_rest = DemoRestApi(
                self, "DemoRest", gatekeeper=self.gatekeeper, key=self.data_key
            )
            self.demo_http = DemoHttpApi(
                self,
                "DemoHttp",
                gatekeeper=self.gatekeeper,
                key=self.data_key,
                runtime=RUNTIME,
                architecture=ARCHITECTURE,
                log_retention=cfg.log_retention,
            )

        # --- alarms and dashboard --------------------------------------------------------------
        self.alarm_topic = sns.Topic(self, "AlarmTopic", master_key=self.data_key, enforce_ssl=True)
        if cfg.alarm_email:
            sns.Subscription(
                self,
                "AlarmEmail",
                topic=self.alarm_topic,
                protocol=sns.SubscriptionProtocol.EMAIL,
                endpoint=cfg.alarm_email,
            )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            authorizer_fn=self.authorizer_fn,
            authorizer_logs=self.authorizer_logs,
            sink_fn=self.sink_fn,
            failure_bucket=self.failure_bucket,
            failure_metrics_id=FAILED_BATCHES_METRICS_ID,
            heartbeat_rule=self.heartbeat_rule,
            topic=self.alarm_topic,
            deny_spike_threshold=cfg.deny_spike_threshold,
        )
        self.operator_policy = self._operator_policy()
        self._acknowledge_stack_findings()

        # Everything the CLI needs (README, "Deploy"): names, the archive prefix, keys, policy.
        for name, value, description in (
            ("ConfigTableName", self.config_table.table_name, "--config-table"),
            ("CountersTableName", self.counters_table.table_name, "--counters-table"),
            ("ArchiveBucketName", self.archive_bucket.bucket_name, "archive verify --bucket"),
            ("ArchivePrefix", ARCHIVE_PREFIX, "archive verify --prefix"),
            ("AuditStreamName", self.stream.stream_name, "--audit-stream (CLI changes)"),
            ("DigestSigningKeyArn", self.signing_key.key_arn, "archive verify --kms"),
            ("DigestSigningKeyId", self.signing_key.key_id, "the digest signing key's id"),
            ("OperatorPolicyArn", self.operator_policy.managed_policy_arn, "attach to operators"),
            ("Region", Aws.REGION, "--region"),
            ("AuditSinkFunctionName", self.sink_fn.function_name, "archive replay --function"),
            ("FailureBucketName", self.failure_bucket.bucket_name, "archive replay --from s3://"),
        ):
            CfnOutput(self, name, value=value, description=f"Gatekeeper CLI: {description}")
        CfnOutput(self, "AuthorizerFunctionName", value=self.authorizer_fn.function_name)
        CfnOutput(self, "AdminApiUrl", value=self.admin_api.api.url)
        if self.demo_rest is not None and self.demo_http is not None:
            CfnOutput(self, "DemoRestApiUrl", value=self.demo_rest.api.url)
            CfnOutput(self, "DemoRestApiId", value=self.demo_rest.api.rest_api_id)
            CfnOutput(self, "DemoHttpApiUrl", value=self.demo_http.api.api_endpoint)

    # --- building blocks -----------------------------------------------------------------------

    def _audit_buckets(self, removal: RemovalPolicy) -> None:
        """The archive (Object Lock on, no default retention) and the failed-batches bucket."""
        cfg = self.settings
        _check_settings(cfg)
        self.archive_bucket = s3.Bucket(
            self,
            "ArchiveBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.data_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # per-object retention only (the sink's GATEKEEPER_AUDIT_OBJECT_LOCK_DAYS)
            object_lock_enabled=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="archive/",
            removal_policy=removal,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="colder-storage",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                            transition_after=Duration.days(cfg.archive_glacier_ir_after_days),
                        ),
                        s3.Transition(
                            storage_class=s3.StorageClass.DEEP_ARCHIVE,
                            transition_after=Duration.days(cfg.archive_deep_archive_after_days),
                        ),
                    ],
                ),
                s3.LifecycleRule(
                    id="athena-results",
                    prefix=ATHENA_RESULTS_PREFIX,
                    expiration=Duration.days(30),
                ),
            ],
        )

        # ObjectLockEnabled alone is honoured at creation; the configuration without a rule makes
        # an update of an existing (versioned) bucket enable Object Lock in place as well.
        archive_cfn = self.archive_bucket.node.default_child
        assert isinstance(archive_cfn, s3.CfnBucket)
        archive_cfn.object_lock_configuration = s3.CfnBucket.ObjectLockConfigurationProperty(
            object_lock_enabled="Enabled"
        )
        # What the event source mapping gave up on, whole batches (payload included): replayed
        # by `gatekeeper archive replay --from s3://<FailureBucketName>/`.
        self.failure_bucket = s3.Bucket(
            self,
            "FailedBatchesBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.data_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="failed-batches/",
            removal_policy=removal,
            metrics=[s3.BucketMetrics(id=FAILED_BATCHES_METRICS_ID)],  # PutRequests: alarm
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="replay-window",
                    expiration=Duration.days(cfg.failed_batches_retention_days),
                    noncurrent_version_expiration=Duration.days(cfg.failed_batches_retention_days),
                )
            ],
        )

    def _sink_env(self) -> dict[str, str]:
        env = {
            "GATEKEEPER_AUDIT_BUCKET": self.archive_bucket.bucket_name,
            "GATEKEEPER_AUDIT_PREFIX": ARCHIVE_PREFIX,
            "GATEKEEPER_AUDIT_SIGNING_KEY_ID": self.signing_key.key_arn,
            "GATEKEEPER_AUDIT_DIGEST_INTERVAL_SECONDS": str(self.settings.digest_interval_seconds),
            "GATEKEEPER_AUDIT_ALERT_BUS": "default",
            "GATEKEEPER_COUNTERS_TABLE": self.counters_table.table_name,
        }
        if self.settings.object_lock_days:
            env["GATEKEEPER_AUDIT_OBJECT_LOCK_DAYS"] = str(self.settings.object_lock_days)
        return env

    def _heartbeat(self) -> None:
        """Digests of idle chains, so ``archive verify`` can require a recent digest of every
        chain. The sink signs a chain's digest once the last is a full interval old; a schedule
        of exactly one interval would often find it a few seconds short and skip to the next
        (two intervals between digests: verify's default --max-age). Every half interval keeps
        them at most 1.5 intervals apart."""
        self.heartbeat_rule = events.Rule(
            self,
            "AuditHeartbeat",
            description="Gatekeeper audit_sink heartbeat: digests of idle chains",
            schedule=events.Schedule.rate(
                Duration.seconds(self.settings.digest_interval_seconds // 2)
            ),
            targets=[
                targets.LambdaFunction(
                    self.sink_fn,
                    event=events.RuleTargetInput.from_object(HEARTBEAT_INPUT),
                    retry_attempts=2,
                    max_event_age=Duration.minutes(15),
                )
            ],
        )

    def _allow_service_on_data_key(
        self, service: str, extra_conditions: dict[str, object] | None = None
    ) -> None:
        self.data_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"Allow{service.split('.', maxsplit=1)[0].title()}",
                principals=[iam.ServicePrincipal(service)],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                    "kms:DescribeKey",
                ],
                resources=["*"],  # in a key policy, "*" is this key
                conditions=extra_conditions,
            )
        )

    def _table(self, construct_id: str, removal: RemovalPolicy, *, ttl: bool) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            construct_id,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.data_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at" if ttl else None,
            deletion_protection=self.settings.retain_data,
            removal_policy=removal,
        )

    def _function(
        self,
        construct_id: str,
        name: str,
        *,
        env: dict[str, str],
        memory: int,
        timeout: Duration,
    ) -> tuple[lambda_.Function, logs.LogGroup]:
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            retention=self.settings.log_retention,
            encryption_key=self.data_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Gatekeeper {name}: least privilege, written out in stack.py",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        fn = lambda_.Function(
            self,
            construct_id,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="handler.lambda_handler",
            code=bundling.function_code(name),
            layers=[self.layer],
            role=role,
            memory_size=memory,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            environment={**_powertools_env(f"gatekeeper-{name.replace('_', '-')}"), **env},
            description=f"Gatekeeper {name} (functions/{name}/handler.py)",
        )
        return fn, log_group

    def _key_use(self, role: iam.IRole, sid: str, actions: list[str], via: str) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid=sid,
                actions=actions,
                resources=[self.data_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"{via}.{Aws.REGION}.amazonaws.com"}
                },
            )
        )

    def _authorizer_permissions(self) -> None:
        role = self.authorizer_fn.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadConfig",
                actions=["dynamodb:GetItem", "dynamodb:Query"],
                resources=[self.config_table.table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CountRequests",
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[self.counters_table.table_arn],
            )
        )
        self._key_use(
            role,
            "TablesKey",
            ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
            "dynamodb",
        )

    def _sink_permissions(self) -> None:
        role = self.sink_fn.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadAuditStream",
                actions=[
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:ListShards",
                ],
                resources=[self.stream.stream_arn],
            )
        )
        self._key_use(role, "StreamKey", ["kms:Decrypt"], "kinesis")
        areas = [
            self.archive_bucket.arn_for_objects(f"{ARCHIVE_PREFIX}{a}*") for a in ARCHIVE_AREAS
        ]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteArchive",  # create-only writes (If-None-Match) of records and digests
                actions=["s3:PutObject"],
                resources=areas,
            )
        )
        if self.settings.object_lock_days:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    # PutObject with ObjectLockMode/RetainUntilDate (write-once areas only)
                    sid="LockArchiveObjects",
                    actions=["s3:PutObjectRetention"],
                    resources=[
                        self.archive_bucket.arn_for_objects(f"{ARCHIVE_PREFIX}{a}*")
                        for a in WRITE_ONCE_AREAS
                    ],
                )
            )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadArchive",  # chain state, the previous digest, and the existing object
                actions=["s3:GetObject"],  # when a retried create finds its key taken
                resources=areas,
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                # A new shard's state object does not exist yet: without ListBucket, S3 answers
                # that GetObject with 403 instead of 404 and the sink could never start a chain.
                sid="FindMissingState",
                actions=["s3:ListBucket"],
                resources=[self.archive_bucket.bucket_arn],
            )
        )
        self._key_use(role, "ArchiveKey", ["kms:Decrypt", "kms:GenerateDataKey"], "s3")
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SignDigests",
                actions=["kms:Sign", "kms:GetPublicKey"],
                resources=[self.signing_key.key_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="Alerts",
                actions=["events:PutEvents"],
                resources=[
                    f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:event-bus/default"
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DetectionCounters",  # failure windows (UpdateItem ADD) and blocks (PutItem)
                actions=["dynamodb:UpdateItem", "dynamodb:PutItem"],
                resources=[self.counters_table.table_arn],
            )
        )
        self._key_use(
            role,
            "TablesKey",
            ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
            "dynamodb",
        )
        # The event source mapping writes its on-failure records with this role (Lambda: an S3
        # destination needs PutObject and ListBucket, and GenerateDataKey on an SSE-KMS bucket,
        # granted above through S3 by ArchiveKey). Replay sends the records back to the function
        # (`archive replay`), which archives them as any batch: no further permission.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteFailedBatches",
                actions=["s3:PutObject"],
                resources=[self.failure_bucket.arn_for_objects("*")],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListFailedBatches",
                actions=["s3:ListBucket"],
                resources=[self.failure_bucket.bucket_arn],
            )
        )

    def _archive_bucket_policy(self) -> None:
        """What no identity policy can grant around: write-once creates, one state writer, no
        deletes (Object Lock covers only locked versions, and the state is never locked)."""
        sink_role = self.sink_fn.role
        assert sink_role is not None
        bucket = self.archive_bucket
        self.archive_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="WriteOnceCreatesOnly",  # S3 conditional writes: the s3:if-none-match key
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[
                    bucket.arn_for_objects(f"{ARCHIVE_PREFIX}{a}*") for a in WRITE_ONCE_AREAS
                ],
                conditions={"Null": {"s3:if-none-match": "true"}},
            )
        )
        self.archive_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheSinkWritesState",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{ARCHIVE_PREFIX}{STATE_AREA}*")],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": sink_role.role_arn}},
            )
        )
        break_glass = self.settings.break_glass_role_arn
        self.archive_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="NoDeletesInTheArchive",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:DeleteObject*", "s3:BypassGovernanceRetention"],
                resources=[bucket.arn_for_objects(f"{ARCHIVE_PREFIX}*")],
                conditions=(
                    {"ArnNotEquals": {"aws:PrincipalArn": break_glass}} if break_glass else None
                ),
            )
        )

    def _admin_permissions(self) -> None:
        role = self.admin_fn.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ManageConfig",
                # writes go through TransactWriteItems (item + version bump), which IAM
                # authorizes per item action; Scan lists keys and principals
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:Scan",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:ConditionCheckItem",
                ],
                resources=[self.config_table.table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InspectCounters",  # usage show/reset, blocklist list/add/remove
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:Scan",
                    "dynamodb:PutItem",
                    "dynamodb:DeleteItem",
                ],
                resources=[self.counters_table.table_arn],
            )
        )
        self._key_use(
            role,
            "TablesKey",
            ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
            "dynamodb",
        )

    def _operator_policy(self) -> iam.ManagedPolicy:
        """What the ``gatekeeper`` CLI needs against this stack, and nothing else.

        Attach it to the role or group of the people (or pipelines) that run ``policy apply``,
        ``keys``, ``usage``, ``block``, ``archive verify`` and ``archive replay``. The same
        rights as the admin function on the tables, plus: put CLI audit records on the audit
        stream, read (never write) the archive under ``audit/`` with its versions, fetch the
        digest signing key's public key, read the failed batches and send them to the sink
        (replay), and read this stack's outputs. No delete on the archive, no Sign with the
        signing key.
        """
        archive_objects = self.archive_bucket.arn_for_objects(f"{ARCHIVE_PREFIX}*")
        failed_batches = self.failure_bucket.arn_for_objects("*")
        statements = [
            iam.PolicyStatement(
                sid="ManageConfig",  # policy plan/apply/export, keys (TransactWriteItems)
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:Scan",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:ConditionCheckItem",
                    "dynamodb:DescribeTable",
                ],
                resources=[self.config_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="InspectCounters",  # usage show/reset, block list/add/remove
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:Scan",
                    "dynamodb:PutItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:DescribeTable",
                ],
                resources=[self.counters_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="TablesKey",
                actions=["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[self.data_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com"}
                },
            ),
            iam.PolicyStatement(
                sid="AuditCliChanges",  # --audit-stream
                actions=["kinesis:PutRecord", "kinesis:PutRecords"],
                resources=[self.stream.stream_arn],
            ),
            iam.PolicyStatement(
                sid="StreamKey",
                actions=["kms:GenerateDataKey"],
                resources=[self.data_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"kinesis.{Aws.REGION}.amazonaws.com"}
                },
            ),
            iam.PolicyStatement(
                sid="ListArchive",  # archive verify walks audit/ only (versions: delete markers)
                actions=["s3:ListBucket", "s3:ListBucketVersions"],
                resources=[self.archive_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{ARCHIVE_PREFIX}*"]}},
            ),
            iam.PolicyStatement(
                sid="ArchiveVersioning",  # verify checks versions only on a versioned bucket
                actions=["s3:GetBucketVersioning"],
                resources=[self.archive_bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="ReadArchive",  # versions: what a delete marker hides, overwritten keys
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[archive_objects],
            ),
            iam.PolicyStatement(
                sid="ListFailedBatches",  # archive replay --from s3://<FailureBucketName>/
                actions=["s3:ListBucket"],
                resources=[self.failure_bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="ReadFailedBatches",
                actions=["s3:GetObject"],
                resources=[failed_batches],
            ),
            iam.PolicyStatement(
                sid="ReplayToSink",  # archive replay --function <AuditSinkFunctionName>
                actions=["lambda:InvokeFunction"],
                resources=[self.sink_fn.function_arn],
            ),
            iam.PolicyStatement(
                sid="ArchiveKey",  # the archive and the failed batches (both SSE-KMS)
                actions=["kms:Decrypt"],
                resources=[self.data_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="DigestPublicKey",  # archive verify --kms: verification happens locally
                actions=["kms:GetPublicKey", "kms:DescribeKey"],
                resources=[self.signing_key.key_arn],
            ),
            iam.PolicyStatement(
                sid="StackOutputs",  # table names, bucket, prefix, stream, key from the outputs
                actions=["cloudformation:DescribeStacks"],
                resources=[self.stack_id],
            ),
        ]
        policy = iam.ManagedPolicy(
            self,
            "OperatorPolicy",
            description="Gatekeeper CLI operators: config, keys, usage, blocks, archive verify "
            "and replay",
            statements=statements,
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{self.stack_logical(self.archive_bucket.node.default_child)}"
            f".Arn>/{ARCHIVE_PREFIX}*]",
            "Read-only GetObject under the archive's audit/ prefix: archive verify reads every "
            "record and digest there, whose keys are only known at run time.",
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{self.stack_logical(self.failure_bucket.node.default_child)}"
            ".Arn>/*]",
            "Read-only GetObject in the failed-batches bucket: archive replay reads the on-failure "
            "records Lambda wrote there, under keys Lambda chooses at run time.",
        )
        return policy

    def _subscribe_to_stream(self, log_group: logs.LogGroup, construct_id: str) -> None:
        role = iam.Role(
            self,
            f"{construct_id}ToStreamRole",
            assumed_by=iam.ServicePrincipal(
                "logs.amazonaws.com",
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": (
                            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"
                        )
                    }
                },
            ),
            description="CloudWatch Logs delivers audit lines to the audit stream",
        )
        policy = iam.Policy(
            self,
            f"{construct_id}ToStreamPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="PutAuditRecords",
                    actions=["kinesis:PutRecord"],
                    resources=[self.stream.stream_arn],
                ),
                iam.PolicyStatement(
                    sid="StreamKey",
                    actions=["kms:GenerateDataKey"],
                    resources=[self.data_key.key_arn],
                ),
            ],
        )
        sub = logs.CfnSubscriptionFilter(
            self,
            f"{construct_id}Subscription",
            log_group_name=log_group.log_group_name,
            destination_arn=self.stream.stream_arn,
            filter_pattern=logs.FilterPattern.exists(AUDIT_FILTER_FIELD).log_pattern_string,
            role_arn=role.role_arn,
            filter_name="gatekeeper-audit",
        )
        sub.node.add_dependency(policy)

    def _athena_table(self) -> None:
        """Glue table ``gatekeeper_audit`` over the archive's ``events/``: columns, partitions,
        projection and SerDe from :mod:`gatekeeper.audit.table_schema`, the one description the
        Athena DDL (``infra/athena/audit_table.sql``) and ``archive query`` are rendered from."""
        database = glue.CfnDatabase(
            self,
            "AuditDatabase",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=AUDIT_DATABASE, description="Gatekeeper audit archive"
            ),
        )
        location = f"s3://{self.archive_bucket.bucket_name}/{ARCHIVE_EVENTS_PREFIX}"
        table = glue.CfnTable(
            self,
            "AuditTable",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=AUDIT_DATABASE,
            table_input=glue.CfnTable.TableInputProperty(
                name=table_schema.TABLE,
                description="Gatekeeper audit archive: OCSF records (gzip JSON lines)",
                table_type="EXTERNAL_TABLE",
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=n, type=table_schema.hive_type(t))
                    for n, t in table_schema.PARTITIONS
                ],
                parameters={
                    "classification": "json",
                    "compressionType": "gzip",
                    **table_schema.PROJECTION,
                    "storage.location.template": location + "dt=${dt}/hour=${hour}/",
                },
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=table_schema.SERDE,
                        parameters=dict(table_schema.SERDE_PROPERTIES),
                    ),
                    columns=[
                        glue.CfnTable.ColumnProperty(name=n, type=t)
                        for n, t in table_schema.glue_columns()
                    ],
                ),
            ),
        )
        table.node.add_dependency(database)

    def _acknowledge_stack_findings(self) -> None:
        """Findings that are accepted by design, each with its reason."""
        acknowledge(
            self.stream,
            "AwsSolutions-KDS3",
            "Audit records are encrypted with the suite's customer-managed key, like every other "
            "store here, so one key policy governs all audit data.",
        )
        for fn in (self.authorizer_fn, self.sink_fn, self.admin_fn):
            assert fn.role is not None
            acknowledge(
                fn.role,
                "AwsSolutions-IAM5[Resource::*]",
                "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level "
                "permissions (added by CDK for active tracing); data actions are scoped.",
            )
            acknowledge(
                fn,
                "AwsSolutions-L1",
                "Pinned to python3.13, the version the layer's wheels are built for "
                "(bundling.PYTHON_VERSION); runtime and wheels move together.",
            )
        archive = self.stack_logical(self.archive_bucket.node.default_child)
        for prefix in (f"{ARCHIVE_PREFIX}{area}" for area in ARCHIVE_AREAS):
            acknowledge(
                self.sink_fn.role,  # type: ignore[arg-type]
                f"AwsSolutions-IAM5[Resource::<{archive}.Arn>/{prefix}*]",
                "Object ARNs under one key prefix of the archive bucket: the sink writes new "
                "objects whose keys are only known at run time.",
            )
        failures = self.stack_logical(self.failure_bucket.node.default_child)
        acknowledge(
            self.sink_fn.role,  # type: ignore[arg-type]
            f"AwsSolutions-IAM5[Resource::<{failures}.Arn>/*]",
            "The event source mapping writes on-failure records into its dedicated bucket with "
            "this role, under keys Lambda chooses at run time; nothing else is in that bucket.",
        )
        provider = self.node.try_find_child(CUSTOM_RESOURCE_PROVIDER_ID)
        if provider is not None:
            acknowledge(
                provider,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                "CDK's AwsCustomResource provider (writes route catalogs at deploy time) uses the "
                "AWS managed basic execution role; its data permissions are scoped separately.",
            )
            acknowledge(
                provider,
                "AwsSolutions-L1",
                "CDK's AwsCustomResource provider runtime is chosen by aws-cdk-lib.",
            )

    def stack_logical(self, element: object) -> str:
        """The logical id of a CFN element, as cdk-nag prints it in finding ids."""
        assert isinstance(element, CfnElement)
        return self.get_logical_id(element)


def _check_settings(cfg: GatekeeperSettings) -> None:
    """Refuse settings the sink or the schedules would reject later, at deploy or run time."""
    if cfg.object_lock_days is not None and not 1 <= cfg.object_lock_days <= 36_500:
        raise ValueError("object_lock_days: 1..36500 days, or None (no per-object retention)")
    interval = cfg.digest_interval_seconds
    if not 120 <= interval <= 86_400 or interval % 120:
        raise ValueError(
            "digest_interval_seconds: a multiple of 120 between 120 and 86400 "
            "(the heartbeat runs every half interval, in whole minutes)"
        )
    if cfg.failed_batches_retention_days < 30:
        raise ValueError("failed_batches_retention_days: at least 30 (time to replay)")


def athena_columns(ddl_path: Path) -> list[tuple[str, str]]:
    """``(name, type)`` of the columns in a ``CREATE EXTERNAL TABLE ... (...)`` statement.

    The Glue table takes its columns from :mod:`gatekeeper.audit.table_schema` directly; this
    parser stays to check that the checked-in DDL (:data:`ATHENA_DDL`) has the same columns."""
    text = "\n".join(
        line.split("--", 1)[0] for line in ddl_path.read_text(encoding="utf-8").splitlines()
    )
    body = text[text.index("(") + 1 : text.index("PARTITIONED BY")].rstrip().removesuffix(")")
    columns: list[tuple[str, str]] = []
    depth, start = 0, 0
    for i, char in enumerate(body + ","):
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        elif char == "," and depth == 0:
            item = " ".join(body[start:i].split())
            start = i + 1
            if item:
                name, col_type = item.split(" ", 1)
                columns.append((name.strip("`"), col_type.replace("`", "").replace(" ", "")))
    return columns
