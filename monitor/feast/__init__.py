"""Feast's on-disk formats, read without Feast: the `Value` protobuf of a feature value and the
serialized entity key (`monitor.feast.codec`). Pure and stdlib only, so every online store that
holds Feast's bytes (SQLite, PostgreSQL, Redis) decodes them the same way."""
