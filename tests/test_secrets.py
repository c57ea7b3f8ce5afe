"""Secrets: any character works in a password given through `${VAR}`, the one scrubber masks
every form of every configured secret, and every credential field of config.yaml is secret."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel, SecretStr

from alerts.config import AlertmanagerReceiver
from checks.errors import ConfigError
from checks.secrets import MASK, Secrets, scrub
from checks.source import Document, interpolate, validate
from monitor.config import Config
from tests.secret_fixtures import (
    EVENTS_VIEW,
    HARD_PASSWORD,
    HASH_VIEW,
    PgRole,
    RedisUser,
    featmon,
    hard_pg_role,
    hard_redis_user,
    pg_host,
    redis_host,
)

__all__ = ["hard_pg_role", "hard_redis_user"]  # fixtures, used by name

# --- substitution ------------------------------------------------------------------------------


def expanded(template: str, env: dict[str, str]) -> object:
    return interpolate(Document("config.yaml", {"url": template}), env).data["url"]  # type: ignore[index]  # interpolate keeps the document's shape: a mapping here


def test_a_variable_in_the_user_info_or_a_query_value_is_percent_encoded() -> None:
    """`${VAR}` in `scheme://user:${VAR}@` or `?password=${VAR}` expands percent-encoded."""
    env = {"PW": HARD_PASSWORD, "USER": "a:b"}
    assert (
        expanded("redis://${USER}:${PW}@h:6379/0", env)
        == "redis://a%3Ab:S3%23cr%2Ft%3Fx%40y%25z%3Aw@h:6379/0"
    )
    assert (
        expanded("postgresql://u@h/db?sslmode=require&password=${PW}", env)
        == "postgresql://u@h/db?sslmode=require&password=S3%23cr%2Ft%3Fx%40y%25z%3Aw"
    )


def test_a_variable_elsewhere_is_expanded_as_it_is() -> None:
    """A whole URL, a host, a path or a text that is no URL takes the value unchanged."""
    env = {"URL": "https://hooks.example/T0/B0/x?y", "HOST": "db:5432", "DIR": "/var/a b"}
    assert expanded("${URL}", env) == env["URL"]
    assert expanded("postgresql://u@${HOST}/db", env) == "postgresql://u@db:5432/db"
    assert expanded("sqlite:///${DIR}/state.db", env) == "sqlite:////var/a b/state.db"
    assert expanded("a ${HOST} b", env) == "a db:5432 b"


# --- the scrubber --------------------------------------------------------------------------------


def test_a_secret_is_masked_in_every_form_a_message_may_carry_it_in() -> None:
    """As written, percent-encoded (either case of `/`), decoded, JSON- and HTML-escaped."""
    secret = 'K3y"&<#/?%@:'
    forms = [
        secret,
        "K3y%22%26%3C%23%2F%3F%25%40%3A",
        "K3y%22%26%3C%23/%3F%25%40%3A",
        'K3y\\"&<#/?%@:',
        "K3y&quot;&amp;&lt;#/?%@:",
    ]
    text = " | ".join(forms)
    assert scrub(text, [secret]) == " | ".join([MASK] * len(forms))


def test_the_password_of_a_url_secret_is_masked_however_the_url_was_written() -> None:
    """Encoded, or with raw `#/?@` in it, the password of a URL is found and masked."""
    encoded = "redis://u:S3%23cr%2Ft%3Fx%40y%25z%3Aw@h:6379/0"
    raw = f"redis://u:{HARD_PASSWORD}@h:6379/0"
    for url in (encoded, raw):
        secrets = Secrets.of([url])
        assert secrets.scrub(f"auth of {HARD_PASSWORD} failed") == f"auth of {MASK} failed"
        assert secrets.scrub("Port could not be cast: 'S3%23cr%2Ft'") != ""
    assert "S3" not in Secrets.of([raw]).scrub(f"failed to connect to {raw}")


def test_the_pieces_of_a_raw_password_that_breaks_its_url_are_masked() -> None:
    """A password written unencoded in the URL is cut by a parser at `@`: the piece it took
    for a host is masked too."""
    url = "postgresql://app:S3cret@pg-xyzzy@127.0.0.1:5432/db"
    said = "failed to resolve host 'pg-xyzzy@127.0.0.1'"
    assert Secrets.of([url]).scrub(said) == "failed to resolve host '***@127.0.0.1'"


def test_the_user_info_of_any_url_is_masked() -> None:
    """Even a URL whose secrets are not configured loses its user info."""
    text = "cannot reach postgresql://admin:hunter22@db:5432/x nor https://tok@h/p"
    assert scrub(text) == "cannot reach postgresql://***@db:5432/x nor https://***@h/p"


def test_the_token_of_a_webhook_url_is_masked_in_its_parts() -> None:
    """A receiver echoing the path of a Slack webhook URL shows no token segment; the route's
    words stay readable."""
    url = "https://hooks.slack.com/services/T0000FEAT/B0000MONI/XXXXxxxxYYYYyyyy"
    said = "no_service for /services/T0000FEAT/B0000MONI/XXXXxxxxYYYYyyyy (B0000MONI)"
    assert scrub(said, [url]) == "no_service for /services/***/***/*** (***)"
    public = "https://events.pagerduty.com/v2/enqueue"
    assert scrub(f"POST {public} failed", [public]) == f"POST {public} failed"


def test_short_values_are_not_scrubbed() -> None:
    """A value under four characters would mask ordinary words: it is left alone."""
    assert scrub("the key is abc", ["abc"]) == "the key is abc"


def test_the_repr_of_secrets_shows_none_of_them() -> None:
    assert "hunter22" not in repr(Secrets.of(["hunter22"]))


# --- the config ----------------------------------------------------------------------------------

CREDENTIAL_WORDS = ("url", "password", "token", "key", "secret", "peers", "webhook")


def _fields(model: type[BaseModel], seen: set[type[BaseModel]]) -> list[tuple[str, object]]:
    """(model.field, annotation) of every field reachable from `model`."""
    if model in seen:
        return []
    seen.add(model)
    out: list[tuple[str, object]] = []
    for name, info in model.model_fields.items():
        out.append((f"{model.__name__}.{name}", info.annotation))
        for sub in _models(info.annotation):
            out.extend(_fields(sub, seen))
    return out


def _models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = [m for arg in get_args(annotation) for m in _models(arg)]
    return found + [m for meta in getattr(annotation, "__metadata__", ()) for m in _models(meta)]


def _holds_secret(annotation: object) -> bool:
    return annotation is SecretStr or any(_holds_secret(arg) for arg in get_args(annotation))


NOT_CREDENTIALS = {
    "ReportsConfig.base_url",  # a public link, put in every alert on purpose
    "RedisStoreConfig.key_template",  # the shape of a Redis key
}


def test_every_field_that_can_hold_a_credential_is_a_secret() -> None:
    """Every field of config.yaml named like a URL, key, token, password, secret or peer list
    is a `SecretStr` (or a tuple of them), except the reports' public base URL and the Redis
    key template."""
    fields = _fields(Config, set())
    credential = [
        (name, annotation)
        for name, annotation in fields
        if any(word in name.rpartition(".")[2] for word in CREDENTIAL_WORDS)
        and name not in NOT_CREDENTIALS
    ]
    plain = [name for name, annotation in credential if not _holds_secret(annotation)]
    assert plain == []
    assert len(credential) >= 10


def test_an_invalid_peer_is_refused_without_repeating_it() -> None:
    """A peer URL may hold a password: the error names its position only."""
    doc = Document(
        "config.yaml",
        {"type": "alertmanager", "peers": ["http://am:9093", "ftp://ops:Pw0rd-42@am:21"]},
        {(): 1},
    )
    with pytest.raises(ConfigError) as caught:
        validate(AlertmanagerReceiver, doc)
    assert "peer 2" in str(caught.value)
    assert "Pw0rd" not in str(caught.value)


# --- real credentials, through `featmon check` ---------------------------------------------------


def write(root: Path, store: str, view: str) -> Path:
    (root / "checks").mkdir()
    (root / "checks" / "a.yaml").write_text(view.format(store="s"), encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(
        f"stores:\n  s: {store}\nchecks: checks/*.yaml\nreports: {{dir: reports}}\n",
        encoding="utf-8",
    )
    return config


def test_a_redis_user_whose_password_holds_url_characters_probes_through_featmon_check(
    tmp_path: Path, hard_redis_user: RedisUser
) -> None:
    """A Redis ACL user with the password `S3#cr/t?x@y%z:w` given as ${VAR}: the check passes
    (exit 0), with no traceback and no part of the password in the output."""
    store = (
        f'{{type: redis, url: "redis://{hard_redis_user.name}:${{REDIS_PW}}@{redis_host()}", '
        f'layout: hash, key_template: "{hard_redis_user.prefix}:{{feature_view}}:{{user_id}}"}}'
    )
    config = write(tmp_path, store, HASH_VIEW)
    ran = featmon(
        ["check", "--config", str(config), "--no-state"], {"REDIS_PW": HARD_PASSWORD}, tmp_path
    )
    assert (ran.code, "Traceback" in ran.stderr) == (0, False), ran.stdout + ran.stderr
    assert "pass" in ran.stdout
    assert "S3#c" not in ran.stdout + ran.stderr


def test_a_postgresql_role_whose_password_holds_url_characters_probes_through_featmon_check(
    tmp_path: Path, hard_pg_role: PgRole
) -> None:
    """A PostgreSQL role with the password `S3#cr/t?x@y%z:w` given as ${VAR}: the table is
    read (exit 0), and no fragment of the password is taken for a host."""
    url = f"postgresql+psycopg://{hard_pg_role.name}:${{PG_PW}}@{pg_host()}/{hard_pg_role.database}"
    config = write(tmp_path, f'{{type: sql, url: "{url}", timeout: 10s}}', EVENTS_VIEW)
    ran = featmon(
        ["check", "--config", str(config), "--no-state"], {"PG_PW": HARD_PASSWORD}, tmp_path
    )
    assert (ran.code, "Traceback" in ran.stderr) == (0, False), ran.stdout + ran.stderr
    assert "y%z:" not in ran.stdout + ran.stderr


def test_a_store_refused_at_start_exits_3_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    """A store that cannot be built (an http:// URL for Redis) is reported in one line, exit 3."""
    store = '{type: redis, url: "http://u:${PW}@127.0.0.1:1/0", layout: hash, key_template: "k:{user_id}"}'
    config = write(tmp_path, store, HASH_VIEW)
    ran = featmon(["check", "--config", str(config), "--no-state"], {"PW": HARD_PASSWORD}, tmp_path)
    assert ran.code == 3
    assert "Traceback" not in ran.stderr
    assert "featmon check: store 's': expected a redis://" in ran.stderr
    assert "S3#c" not in ran.stderr
