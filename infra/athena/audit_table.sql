-- Gatekeeper audit archive (OCSF 1.6.0 records, gzip JSON Lines) with partition projection:
-- no crawler and no MSCK REPAIR; Athena derives dt/hour partitions from the predicates.
-- Replace ${bucket} and ${prefix} (e.g. "audit/") when deploying (the CDK does).
-- Generated from gatekeeper/audit/table_schema.py: do not edit; regenerate with
--   python -m gatekeeper.audit.table_schema > infra/athena/audit_table.sql
CREATE EXTERNAL TABLE IF NOT EXISTS gatekeeper_audit (
  class_uid int,
  class_name string,
  category_uid int,
  category_name string,
  activity_id int,
  activity_name string,
  type_uid bigint,
  type_name string,
  severity_id int,
  severity string,
  `time` bigint,
  status_id int,
  status string,
  status_detail string,
  message string,
  metadata struct<
    uid:string,
    version:string,
    product:struct<name:string, vendor_name:string, version:string>,
    log_name:string,
    original_time:string,
    correlation_uid:string,
    profiles:array<string>>,
  cloud struct<provider:string>,
  action_id int,
  action string,
  disposition_id int,
  disposition string,
  actor struct<
    `user`:struct<
      uid:string,
      name:string,
      type_id:int,
      `type`:string,
      org:struct<uid:string>,
      programmatic_credentials:array<struct<uid:string, `type`:string>>>>,
  `user` struct<
    uid:string,
    name:string,
    type_id:int,
    `type`:string,
    org:struct<uid:string>,
    programmatic_credentials:array<struct<uid:string, `type`:string>>>,
  src_endpoint struct<ip:string, name:string, type_id:int, `type`:string>,
  http_request struct<
    http_method:string,
    url:struct<path:string>,
    user_agent:string,
    uid:string>,
  api struct<operation:string, service:struct<name:string>, request:struct<uid:string>>,
  service struct<name:string>,
  resources array<struct<uid:string, `type`:string>>,
  auth_protocol_id int,
  auth_protocol string,
  unmapped struct<
    schema_version:string,
    event_type:string,
    decision:string,
    reason:string,
    tenant:string,
    auth_method:string,
    issuer:string,
    key_id:string,
    roles:array<string>,
    event_kind:string,
    event_shape:string,
    api_id:string,
    stage:string,
    route_key:string,
    matched_rule:string,
    policy_scope:string,
    config_version:bigint,
    latency_ms:double,
    rate_limit:struct<
      rule_id:string,
      limited:boolean,
      counter:bigint,
      `limit`:bigint,
      remaining:bigint,
      reset_seconds:double,
      retry_after_seconds:double,
      shadow:boolean,
      shadow_limited:array<string>,
      errors:array<string>>,
    change:struct<
      operation:string,
      resource_type:string,
      target:string,
      actor_kind:string,
      source:string,
      before_digest:string,
      after_digest:string,
      config_version_before:bigint,
      config_version_after:bigint>>
)
PARTITIONED BY (dt string, hour string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
LOCATION 's3://${bucket}/${prefix}events/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2026-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'projection.hour.type' = 'integer',
  'projection.hour.range' = '0,23',
  'projection.hour.digits' = '2',
  'storage.location.template' = 's3://${bucket}/${prefix}events/dt=${dt}/hour=${hour}/'
);
