CREATE PROTO BUNDLE (
  google.longrunning.Operation,
  google.rpc.Status,
  `google.protobuf.Any`
);

CREATE TABLE Operations (
  key STRING(MAX) NOT NULL AS (Operation.name) STORED,
  Operation google.longrunning.Operation NOT NULL,
  Checkpoint BYTES(MAX),
  version INT64 NOT NULL,
  done BOOL NOT NULL AS (Operation.done) STORED,
  metadata_type STRING(MAX) NOT NULL,
  error_code INT64,
  state STRING(MAX) NOT NULL,
  create_time_us INT64 NOT NULL,
  update_time_us INT64 NOT NULL,
  owner STRING(MAX) NOT NULL,
  request_id STRING(MAX),
  method STRING(MAX) NOT NULL,
  work STRING(MAX) NOT NULL,
  lease_holder STRING(MAX) NOT NULL,
  lease_expire_us INT64 NOT NULL,
  claimable_expire_us INT64 AS (IF(done, NULL, lease_expire_us)) STORED,
  unfinished_create_time_us INT64 AS (IF(done, NULL, create_time_us)) STORED,
  done_time TIMESTAMP OPTIONS (allow_commit_timestamp = true),
  job_id INT64,
  run_id INT64,
  cluster_id STRING(MAX),
  warehouse_id STRING(MAX),
  pipeline_id STRING(MAX),
  done_update_time_us INT64 AS (IF(done, update_time_us, NULL)) STORED,
) PRIMARY KEY (key),
  ROW DELETION POLICY (OLDER_THAN(done_time, INTERVAL ${retention_days} DAY));

CREATE INDEX OperationsByCreateTime ON Operations (create_time_us DESC, key DESC);

CREATE INDEX OperationsByOwnerCreateTime ON Operations (owner, create_time_us DESC, key DESC);

CREATE UNIQUE NULL_FILTERED INDEX OperationsByRequestId ON Operations (owner, request_id);

CREATE NULL_FILTERED INDEX OperationsClaimable ON Operations (claimable_expire_us) STORING (lease_holder);

CREATE NULL_FILTERED INDEX OperationsUnfinishedByCreateTime ON Operations (unfinished_create_time_us DESC, key DESC);

CREATE NULL_FILTERED INDEX OperationsUnfinishedByOwnerCreateTime ON Operations (owner, unfinished_create_time_us DESC, key DESC);

CREATE NULL_FILTERED INDEX OperationsByJobId ON Operations (job_id, create_time_us DESC, key DESC);

CREATE NULL_FILTERED INDEX OperationsByRunId ON Operations (run_id, create_time_us DESC, key DESC);

CREATE NULL_FILTERED INDEX OperationsByClusterId ON Operations (cluster_id, create_time_us DESC, key DESC);

CREATE NULL_FILTERED INDEX OperationsByWarehouseId ON Operations (warehouse_id, create_time_us DESC, key DESC);

CREATE NULL_FILTERED INDEX OperationsByPipelineId ON Operations (pipeline_id, create_time_us DESC, key DESC);

CREATE NULL_FILTERED INDEX OperationsDoneByUpdateTime ON Operations (done_update_time_us, key);

CREATE TABLE OperationLabels (
  key STRING(MAX) NOT NULL,
  label_key STRING(63) NOT NULL,
  label_value STRING(63) NOT NULL,
  create_time_us INT64 NOT NULL,
) PRIMARY KEY (key, label_key),
  INTERLEAVE IN PARENT Operations ON DELETE CASCADE;

CREATE INDEX OperationLabelsByValue ON OperationLabels (label_key, label_value, create_time_us DESC, key DESC);

CREATE TABLE OperationJournal (
  key STRING(MAX) NOT NULL,
  seq INT64 NOT NULL,
  data STRING(MAX) NOT NULL,
) PRIMARY KEY (key, seq),
  INTERLEAVE IN PARENT Operations ON DELETE CASCADE;
