"""Secrets out of text: the one scrubber every boundary that turns an error into text uses
(store errors, probe failures, delivery failures, state-database errors, CLI errors, logs).

    secrets = Secrets.within(config)            # every `SecretStr` of a config, in every form
    secrets.scrub("password authentication failed for 'S3#cr/t'")   # -> "... for '***'"

A secret is removed in every form a message may carry it in: as configured, percent-encoded
(`quote` with and without `/` kept, `quote_plus`), percent-decoded, JSON- and HTML-escaped. A
secret that is a URL gives up its parts: the password of its user info (however the URL is
written, even with unencoded `@`, `/`, `#` or `?`), query values named like a credential, and
for http(s) URLs (webhooks carry their token in the path) each path segment or query value that
looks like a token. Finally the user info of any URL in the text (`scheme://user:pass@`) is masked,
whoever's it is.

It lives in `checks`, the lowest room, so that `alerts` and `monitor` both use it; it is pure
(text in, text out) and imports nothing but pydantic's `SecretStr` type.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

from pydantic import BaseModel, SecretStr

MASK = "***"
MIN_LENGTH = 4
"""Shorter values are not scrubbed: masking every `abc` in every message would mangle text,
and a value that short is no secret worth the name."""

_PATH_SEGMENT = 8  # a webhook token such as Slack's T000/B000/XXXX is segments of 9+ characters
_CREDENTIAL_KEY = re.compile(r"pass|secret|token|key|auth|sig|cred", re.IGNORECASE)
_DELIMITER = re.compile(r"[@/?#:]")
_WORD = re.compile(r"[a-z._~-]+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#@'\"<>]+@")


@dataclass(frozen=True)
class Secrets:
    """The text forms of a set of secret values, longest first; `scrub` masks them."""

    forms: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: Iterable[str]) -> Secrets:
        """Every form of each value (a URL: of its secret parts), for scrubbing."""
        return cls(_longest_first({form for value in values for form in _forms_of(value)}))

    @classmethod
    def within(cls, *models: object) -> Secrets:
        """The secrets of every `SecretStr` field reachable from `models` (nested models,
        tuples, lists and mappings of them)."""
        return cls.of(secret_values(models))

    def __add__(self, other: Secrets) -> Secrets:
        return Secrets(_longest_first(set(self.forms) | set(other.forms)))

    def __repr__(self) -> str:
        return f"Secrets({len(self.forms)} forms)"

    def __bool__(self) -> bool:
        return bool(self.forms)

    def scrub(self, text: str) -> str:
        """`text` with every form of every secret, and the user info of every URL, masked."""
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        return _USERINFO.sub(rf"\g<scheme>{MASK}@", text)


NO_SECRETS = Secrets()


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secret values (in every form) or any URL's user info."""
    return Secrets.of(secrets).scrub(text)


def _longest_first(forms: set[str]) -> tuple[str, ...]:
    """Longest first, so that a secret is masked whole before a shorter one inside it."""
    return tuple(sorted(forms, key=lambda form: (-len(form), form)))


def secret_values(node: object) -> Iterator[str]:
    """The value of every `SecretStr` reachable from `node`."""
    if isinstance(node, SecretStr):
        yield node.get_secret_value()
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from secret_values(getattr(node, name))
    elif isinstance(node, dict):
        for item in node.values():
            yield from secret_values(item)
    elif isinstance(node, list | tuple | set | frozenset):
        for item in node:
            yield from secret_values(item)


def _forms_of(value: str) -> set[str]:
    parts = _url_parts(value) if _SCHEME.match(value) else {value}
    forms: set[str] = set()
    for part in parts:
        for raw in (part, unquote(part)):
            forms.update(
                {
                    raw,
                    quote(raw, safe=""),
                    quote(raw),
                    quote_plus(raw),
                    html.escape(raw),
                    json.dumps(raw)[1:-1],
                    json.dumps(raw, ensure_ascii=False)[1:-1],
                }
            )
    return {form for form in forms if len(form) >= MIN_LENGTH}


def _url_parts(url: str) -> set[str]:
    """The secret parts of a URL: the password of its user info (read both as a well-formed
    URL and as one whose password holds unencoded `/?#@`), query values named like a
    credential, and for http(s) each part of the path and query that looks like a token."""
    parts: set[str] = set()
    authority = url.split("://", 1)[1]
    greedy = authority.rpartition("@")[0]  # up to the last @: a password with raw / ? # @
    proper = authority.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[0]
    for userinfo in (greedy, proper):
        password = userinfo.split(":", 1)[1] if ":" in userinfo else ""
        parts.add(password)
        if _DELIMITER.search(password):
            # Written raw, it breaks the URL: parsers cut it at different places and take its
            # pieces for a port, a host or a path, which messages then quote (`cannot resolve
            # host 'xyz@db'`). Encoded (as `${VAR}` is) it has no such pieces.
            parts.update(_DELIMITER.split(password))
    try:
        split = urlsplit(url)
    except ValueError:
        return parts
    if split.password:
        parts.add(split.password)
    parts.update(v for k, v in parse_qsl(split.query) if _CREDENTIAL_KEY.search(k))
    if split.scheme.lower() in ("http", "https"):
        rest = url.split("://", 1)[1].partition("/")[2]
        parts.update(s for s in re.split(r"[/?#&=]", rest) if _token_like(s))
    return parts


def _token_like(segment: str) -> bool:
    """A path segment or query value that looks like a token: long, and not a lower-case word
    (`services`, `enqueue`: a route, which scrubbing would only make harder to read)."""
    return len(segment) >= _PATH_SEGMENT and not _WORD.fullmatch(segment)
