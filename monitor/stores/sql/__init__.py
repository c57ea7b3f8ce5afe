"""Stores read through SQLAlchemy: offline SQL tables, Parquet through DuckDB, and Feast's SQL
online stores. This package is the only importer of sqlalchemy (see pyproject's contracts)."""
