#!/bin/sh
# The sweeps' own database and the role the launch and workers log in as: an ordinary role
# (no superuser, no CREATEDB, no CREATEROLE) that owns that database and nothing else, so a
# worker's password opens the sweep's studies and no other database, role or file of the
# server. Run once by the postgres image when it initialises its data directory (mounted
# into /docker-entrypoint-initdb.d by docker-compose.yml and deploy/k8s/postgres.yaml), as
# the image's superuser, whose password (POSTGRES_SUPERUSER_PASSWORD) no sweep process has.
#   SWEEPS_DB_PASSWORD   the role's password (required)
#   SWEEPS_DB_USER, SWEEPS_DB_NAME   default: sweeps
set -eu
: "${SWEEPS_DB_PASSWORD:?set SWEEPS_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v user="${SWEEPS_DB_USER:-sweeps}" -v db="${SWEEPS_DB_NAME:-sweeps}" \
    -v password="$SWEEPS_DB_PASSWORD" <<'SQL'
CREATE ROLE :"user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"user";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
