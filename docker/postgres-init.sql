-- Run once by the postgres image on an empty volume: MLflow gets its own database next to Optuna's.
CREATE DATABASE mlflow OWNER infomin;
