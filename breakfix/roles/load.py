"""Build a role's settings from flags, environment and file; show them with secrets masked; hand
them to the library code that reads the environment.

Why the environment is written back: several parts read their settings from ``BREAKFIX_*`` variables
themselves (a Kafka client's security, a worker process, the token table, the Jira and NICo
clients). Exporting the effective values once, after precedence is resolved, means a value from the
settings file or a flag reaches them too, by the same route worker processes already get theirs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr
from pydantic_settings import BaseSettings, NoDecode

S = TypeVar("S", bound=BaseSettings)

MASK = "**********"


def build(model: type[S], settings_file: Path | None = None, **flags: Any) -> S:
    """The effective settings: ``flags`` that were given (not None) > environment > ``settings_file``
    (else ``breakfix.env`` in the working directory) > defaults. Raises ``ValueError`` (pydantic's
    ``ValidationError``) on a bad value, and ``FileNotFoundError`` for a missing settings file."""
    if settings_file is not None and not settings_file.is_file():
        raise FileNotFoundError(f"settings file {settings_file} does not exist")
    given = {k: v for k, v in flags.items() if v is not None}
    if settings_file is not None:
        return model(_env_file=settings_file, **given)
    return model(**given)


def env_name(field: str) -> str:
    return f"BREAKFIX_{field.upper()}"


def shown(name: str, value: Any) -> Any:
    """A value as ``--print-settings`` shows it: secrets masked, a DSN with its password masked."""
    if isinstance(value, SecretStr):
        return masked_dsn(value.get_secret_value()) if name.endswith("_dsn") else MASK
    if isinstance(value, Path):
        return str(value)
    return value


def masked_dsn(dsn: str) -> str:
    """``http://user:secret@host:8123/?db`` -> ``http://user:**********@host:8123/?db``; a DSN
    that does not parse is masked whole (it may be all secret)."""
    try:
        parts = urlsplit(dsn)
        if parts.password is None:
            return dsn
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return MASK


def masked(settings: BaseSettings) -> dict[str, Any]:
    """Every setting by its environment variable, secrets masked (what ``--print-settings`` prints):
    the role's own settings first, then those it shares with the other streaming roles."""
    from streams.settings import StreamSettings

    fields = list(type(settings).model_fields)
    shared = set(StreamSettings.model_fields) if isinstance(settings, StreamSettings) else set()
    ordered = [f for f in fields if f not in shared] + [f for f in fields if f in shared]
    model, out = type(settings), {}
    for name in ordered:
        value = getattr(settings, name)
        out[env_name(name)] = _list_env(model, name, value) if isinstance(value, list) else shown(name, value)
    return out


def export_env(settings: BaseSettings) -> None:
    """Write the effective settings to this process's ``BREAKFIX_*`` environment (see module doc)."""
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list):
            value = _list_env(type(settings), name, value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        os.environ[env_name(name)] = str(value)


def _list_env(model: type[BaseSettings], name: str, value: list[Any]) -> str:
    """A list as its variable is read back: comma-separated where the field is not JSON-decoded."""
    import json

    no_decode = any(m is NoDecode or isinstance(m, NoDecode) for m in model.model_fields[name].metadata)
    return ",".join(str(v) for v in value) if no_decode else json.dumps(value)


def describe(model: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """(environment variable, default, description) of every setting, for the operate docs."""
    rows = []
    for name, f in model.model_fields.items():
        default: Any = f.default_factory() if f.default_factory else f.default  # type: ignore[call-arg]
        text = str(default) if isinstance(default, Path) else repr(default)
        rows.append((env_name(name), text, f.description or ""))
    return rows
