"""config.yaml: stores, check files, receivers, the HTTP listener and the state database.

Parsed once at the edge into frozen models that refuse unknown keys; stores are a discriminated
union on `type`. Relative paths are resolved against the directory of config.yaml by
`monitor.loader`, so the models below always hold what the file said.
"""

from __future__ import annotations

import ipaddress
import re
import string
from datetime import timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from alerts.config import Receiver
from alerts.lifecycle import AlertingConfig
from alerts.routing import RootRouteConfig
from alerts.silences import SilenceList, WindowList
from checks.duration import Duration


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Store(Strict):
    timezone: str = Field(
        "UTC", description="Zone of timestamps the store keeps without one (IANA name)."
    )
    timeout: Duration = Field(
        timedelta(seconds=30), description="Longest a single query or read may take."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"expected an IANA time zone such as UTC or Europe/Berlin, found {value!r}"
            ) from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class SqlStoreConfig(_Store):
    """An offline store reached through a SQLAlchemy URL (PostgreSQL, SQLite, DuckDB, ...)."""

    type: Literal["sql"]
    url: SecretStr = Field(description="SQLAlchemy URL; put passwords in ${VARS}.")


class ParquetStoreConfig(_Store):
    """An offline store of Parquet files, read through DuckDB."""

    type: Literal["parquet"]
    root: str = Field(".", description="Directory that the views' `path` values are relative to.")


class FeastSqliteStoreConfig(_Store):
    """Feast's SQLite online store: one table per feature view named {project}_{view}."""

    type: Literal["feast-sqlite"]
    path: str = Field(description="The SQLite file (Feast's `online_store.path`).")
    project: str = Field(description="The Feast project name.")


class FeastSqlStoreConfig(_Store):
    """Feast's SQL online store on PostgreSQL: one table per feature view named
    {project}_{view}, read through SQLAlchemy."""

    type: Literal["feast-sql"]
    url: SecretStr = Field(description="SQLAlchemy URL, e.g. postgresql+psycopg://ro@db/feast.")
    project: str = Field(description="The Feast project name.")


def template_fields(template: str) -> frozenset[str] | None:
    """The placeholder names of a key template; None when it does not parse, names none, or
    has a placeholder that is not a plain name (a format spec or conversion, which the Redis
    store cannot key by)."""
    try:
        parsed = [
            (name, spec, conv)
            for _, name, spec, conv in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError:
        return None
    names = {name for name, _, _ in parsed}
    if not names or any(not n.isidentifier() or spec or conv for n, spec, conv in parsed):
        return None
    return frozenset(names)


class RedisStoreConfig(_Store):
    """A Redis online store: Feast's layout, or plain hashes for teams without Feast."""

    type: Literal["redis"]
    url: SecretStr = Field(
        description="redis://, rediss:// (TLS) or unix:// URL; credentials in ${VARS}."
    )
    cluster: bool = Field(False, description="Connect to a Redis Cluster through this node.")
    layout: Literal["feast", "hash"] = Field(
        "feast",
        description="`feast`: Feast's key and field encoding; `hash`: one plain hash per entity.",
    )
    project: str | None = Field(None, description="The Feast project name (layout feast).")
    key_template: str | None = Field(
        None,
        description="Layout hash: the key of an entity, e.g. `features:{feature_view}:{user_id}`.",
    )
    timestamp_field: str = Field("_ts", description="Layout hash: the field of the event time.")
    timestamp_format: Literal["epoch_s", "epoch_ms", "iso8601"] = Field(
        "epoch_s", description="Layout hash: how the event time is written."
    )
    value_format: Literal["text", "json"] = Field(
        "text", description="Layout hash: values as UTF-8 text or JSON."
    )
    batch_size: int = Field(500, ge=1, le=100_000, description="Keys per pipelined round trip.")

    @field_validator("key_template")
    @classmethod
    def _template_parses(cls, value: str | None) -> str | None:
        if value is not None and not template_fields(value):
            raise ValueError(
                "expected a key template with placeholders such as "
                f"features:{{feature_view}}:{{user_id}} (plain names, no format spec or "
                f"conversion), found {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _layout_needs(self) -> RedisStoreConfig:
        if self.layout == "feast" and not self.project:
            raise ValueError("expected `project` for layout feast, found none")
        if self.layout == "hash" and not self.key_template:
            raise ValueError("expected `key_template` for layout hash, found none")
        return self


StoreConfig = Annotated[
    SqlStoreConfig
    | ParquetStoreConfig
    | FeastSqliteStoreConfig
    | FeastSqlStoreConfig
    | RedisStoreConfig,
    Field(discriminator="type"),
]
ONLINE_TYPES = frozenset({"feast-sqlite", "feast-sql", "redis"})
OFFLINE_TYPES = frozenset({"sql", "parquet"})


_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def _is_host(text: str) -> bool:
    """A DNS name, an IPv4 address or a bracketed (or bare) IPv6 address: no scheme, port,
    path or wildcard."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        return bare == text and _HOST_NAME.fullmatch(text) is not None
    return True


def _host(text: str) -> str:
    if not _is_host(text):
        raise ValueError(
            "expected a host name or IP address such as featmon.monitoring.svc or 10.0.0.7 "
            f"(no scheme, port, path or wildcard), found {text!r}"
        )
    return text


HostName = Annotated[str, AfterValidator(_host)]


def _blank_secret(secret: SecretStr | None, what: str) -> SecretStr | None:
    """Refuse an empty, blank or padded secret (the message never quotes it)."""
    if secret is None:
        return None
    value = secret.get_secret_value()
    if not value.strip():
        raise ValueError(f"expected a non-empty {what}, found an empty or blank one")
    if value != value.strip():
        raise ValueError(
            f"expected a {what} without leading or trailing whitespace, found some "
            "(a trailing newline read from a file?)"
        )
    return secret


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port` as config.yaml writes it; an empty host listens on every interface."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port with a port from 0 to 65535, found {listen!r}")
    return host or "0.0.0.0", int(port)  # noqa: S104 - an empty host means every interface


class HttpConfig(Strict):
    listen: str = Field("127.0.0.1:9108", pattern=r"^[^:\s]*:\d{1,5}$")
    token: SecretStr | None = Field(
        None,
        description="Bearer token for all but /metrics and health (put it in a ${VAR}); unset: "
        "no token. Empty or blank is an error.",
    )
    allowed_hosts: tuple[HostName, ...] = Field(
        (),
        description="Host names (or IP addresses) the sidecar answers to besides localhost, "
        "127.0.0.1, [::1], the listen address and the address a request arrived on; any other "
        "Host header is refused (421) against DNS rebinding. Listening on 0.0.0.0, list the "
        "names it is reached by: the Service's DNS name, the public name behind a proxy.",
    )

    @field_validator("token")
    @classmethod
    def _token_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        return _blank_secret(value, "token")

    @field_validator("listen")
    @classmethod
    def _port(cls, value: str) -> str:
        """The sidecar's own rule (`parse_listen`): a port up to 65535."""
        parse_listen(value)
        return value


class StateConfig(Strict):
    url: SecretStr = Field(
        SecretStr("sqlite:///featmon-state.db"),
        description="SQLAlchemy URL of the state database (history, baselines, alert state); "
        "a relative SQLite path is relative to config.yaml.",
    )
    retention: Duration = Field(timedelta(days=30))
    buffer_runs: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="Runs kept in memory while the state database cannot take them, written "
        "when it is back; beyond this the oldest are dropped and counted. Unset: 60 per "
        "scheduled feature view.",
    )
    outage_alert_after: Duration = Field(
        timedelta(minutes=2),
        description="A state database that cannot be written for this long is itself an alert "
        "(P1, check featmon.state_database), resolved when it is back.",
    )


MIN_LINK_KEY = 32  # characters of reports.link_key
MAX_LINK_TTL = timedelta(days=366)


class ReportsConfig(Strict):
    dir: str = Field(
        "featmon-reports",
        description="Where `featmon check` writes its HTML report (the daemon writes none: its "
        "sidecar renders each run's report on demand at /reports/).",
    )
    base_url: str | None = Field(None, description="Public URL of the reports, for alert links.")
    link_key: SecretStr | None = Field(
        None,
        description="Key that signs the report links in alerts (HMAC-SHA256), at least "
        f"{MIN_LINK_KEY} characters, from the environment: ${{FEATMON_LINK_KEY}}. A signed link "
        "opens its one run's report without the bearer token until it expires. Unset: links "
        "are plain, and need the token when http.token is set.",
    )
    link_ttl: Duration = Field(
        timedelta(days=30), description="How long a signed report link opens its report."
    )

    @field_validator("link_key")
    @classmethod
    def _key_is_long(cls, value: SecretStr | None) -> SecretStr | None:
        value = _blank_secret(value, "link key")
        if value is not None and len(value.get_secret_value()) < MIN_LINK_KEY:
            raise ValueError(
                f"expected a link key of at least {MIN_LINK_KEY} characters (openssl rand -hex "
                f"32 makes one), found {len(value.get_secret_value())}"
            )
        return value

    @field_validator("link_ttl")
    @classmethod
    def _ttl_is_positive(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= MAX_LINK_TTL:
            raise ValueError(
                f"expected a link lifetime from 1s to {MAX_LINK_TTL.days}d, found {value}"
            )
        return value


class Config(Strict):
    """The whole of config.yaml."""

    stores: dict[str, StoreConfig] = Field(min_length=1)
    checks: str | tuple[str, ...] = Field(description="Check files: a glob, or a list of globs.")
    receivers: dict[str, Receiver] = Field(default_factory=dict)
    alerting: AlertingConfig = AlertingConfig()
    route: RootRouteConfig | None = Field(
        None, description="Routing tree; unset: P1 to pagerduty and the rest, P1-P3 elsewhere."
    )
    silences: SilenceList = ()
    maintenance_windows: WindowList = ()
    http: HttpConfig = HttpConfig()
    state: StateConfig = StateConfig()
    reports: ReportsConfig = ReportsConfig()

    @property
    def check_globs(self) -> tuple[str, ...]:
        return (self.checks,) if isinstance(self.checks, str) else self.checks


def warnings(config: Config) -> list[str]:
    """What is valid but probably not meant, for `featmon validate` and the daemon's log."""
    reports, token = config.reports, config.http.token
    found = []
    if reports.base_url and token is not None and reports.link_key is None:
        found.append(
            "reports.base_url: the report links in alerts need the bearer token (http.token), "
            "so the people paged cannot open them; set reports.link_key (e.g. "
            "${FEATMON_LINK_KEY}) to sign links that open their report without it"
        )
    if reports.link_key is not None and not reports.base_url:
        found.append(
            "reports.link_key: set, but reports.base_url is not, so alerts carry no report link"
        )
    return found
