-- Gatekeeper audit archive (OCSF 1.1 records, gzip JSON Lines) with partition projection:
-- no crawler and no MSCK REPAIR; Athena derives dt/hour partitions from the predicates.
-- Replace ${bucket} and ${prefix} (e.g. "audit/") when deploying (the CDK does).
CREATE EXTERNAL TABLE IF NOT EXISTS gatekeeper_audit (
  class_uid int,
  class_name string,
  category_uid int,
  activity_id int,
  activity_name string,
  type_uid bigint,
  severity_id int,
  `time` bigint,
  status_id int,
  status string,
  status_detail string,
  message string,
  disposition string,
  metadata struct<uid:string, version:string, original_time:string, correlation_uid:string,
                  log_name:string, product:struct<name:string, vendor_name:string, version:string>>,
  actor struct<user:struct<uid:string, org:struct<uid:string>>>,
  `user` struct<uid:string, org:struct<uid:string>>,
  src_endpoint struct<ip:string>,
  http_request struct<http_method:string, url:struct<path:string>, user_agent:string, uid:string>,
  api struct<operation:string, service:struct<name:string>, request:struct<uid:string>>,
  auth_protocol string,
  unmapped struct<
    schema_version:string, event_type:string, decision:string, reason:string, tenant:string,
    auth_method:string, issuer:string, key_id:string, roles:array<string>, event_kind:string,
    api_id:string, stage:string, route_key:string, matched_rule:string, policy_scope:string,
    config_version:bigint, latency_ms:double,
    rate_limit:struct<rule_id:string, limited:boolean, counter:bigint, `limit`:bigint,
                      remaining:bigint, reset_seconds:double, retry_after_seconds:double,
                      shadow:boolean>,
    change:struct<operation:string, target:string, config_version_before:bigint,
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
