-- The Prefect server's database beside MLflow's (POSTGRES_DB) in the compose stack's PostgreSQL.
CREATE DATABASE prefect;
