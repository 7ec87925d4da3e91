#!/bin/sh
# MLflow's own database and user on the sweep's PostgreSQL server: the MLflow server keeps
# its runs, metrics and tags there (not SQLite on a volume: one writer at a time, which 16+
# workers queue behind; see docs/explanation/performance.md, "Load"). Run once by the postgres image
# when it initialises its data directory (mounted into /docker-entrypoint-initdb.d by
# docker-compose.yml and by deploy/k8s/postgres.yaml), as the image's superuser.
#   MLFLOW_DB_PASSWORD   the mlflow user's password (required)
#   MLFLOW_DB_USER, MLFLOW_DB_NAME   default: mlflow
set -eu
: "${MLFLOW_DB_PASSWORD:?set MLFLOW_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v user="${MLFLOW_DB_USER:-mlflow}" -v db="${MLFLOW_DB_NAME:-mlflow}" \
    -v password="$MLFLOW_DB_PASSWORD" <<'SQL'
CREATE USER :"user" WITH PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"user";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
