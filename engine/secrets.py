"""Secrets come from the environment or from files, never from the command line.

A command line is readable by every user of the machine (``ps``, ``/proc/<pid>/cmdline``)
and ends up in shell histories, CI logs and Kubernetes pod specs. So each secret has a
variable ``NAME`` and a variable ``NAME_FILE`` naming a file that holds it (a mounted
Kubernetes Secret, a Docker secret); ``secret`` reads whichever is set, and a URL given on
the command line with a password in it is refused (``password_in_url``).

This module imports nothing of ours: every layer may use it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit


class SecretError(Exception):
    """A secret set wrongly (both ways, or an unreadable file), said without its value."""


# Every secret the engine reads: (variable, file variable). Literal names, so that the
# deploy tests can check that manifests set only variables the code reads.
EVENT_STORE_PASSWORD = ("RATING_EVENT_STORE_PASSWORD", "RATING_EVENT_STORE_PASSWORD_FILE")
CLICKHOUSE_PASSWORD = ("RATING_CLICKHOUSE_PASSWORD", "RATING_CLICKHOUSE_PASSWORD_FILE")
CHAIN_KEY = ("RATING_CHAIN_KEY", "RATING_CHAIN_KEY_FILE")


def secret(names: tuple[str, str], environ: Mapping[str, str] | None = None) -> str | None:
    """The value of ``names[0]``, or the content of the file named by ``names[1]`` (one
    trailing newline dropped); None when neither is set."""
    env = os.environ if environ is None else environ
    name, file_name = names
    value, path = env.get(name), env.get(file_name)
    if value and path:
        raise SecretError(f"set {name} or {file_name}, not both")
    if value:
        return value
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SecretError(f"{file_name}={path}: cannot read the secret: {reason}") from None
    text = text[:-1] if text.endswith("\n") else text
    if not text:
        raise SecretError(f"{file_name}={path}: the file is empty")
    return text


def password_in_url(url: str) -> bool:
    """Whether ``url`` carries a password (``scheme://user:password@host``)."""
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages and logs."""
    try:
        parts = urlsplit(url)
        if not parts.password:
            return url
    except ValueError:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def with_password(url: str, password: str | None) -> str:
    """``url`` with ``password`` set, unless it has one or there is none to set. For use in
    memory only: the result is never printed or passed to another process."""
    if not password or password_in_url(url):
        return url
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    netloc = f"{user or 'default'}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))
