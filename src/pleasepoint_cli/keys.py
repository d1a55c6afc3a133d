"""The key that signs unsubscribe and click links, kept outside the database.

`$PLEASEPOINT_SECRET` when set; else a random key in a file beside the database (`<stem>.key`, mode 0600),
made on first need. Outside DuckDB so a process that cannot open the file (the tracking server, while an
analyst holds it) can still verify links. A key that an older version kept in the database's `secrets`
table is moved to the file when the database is opened, so links already sent keep working.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pleasepoint_cli.errors import ConfigError

SECRET_ENV = "PLEASEPOINT_SECRET"


def key_path(db_path: Path) -> Path:
    """The key file beside a database: `shop/pleasepoint.duckdb` -> `shop/pleasepoint.key`."""
    return db_path.with_suffix(".key")


def write_key_file(db_path: Path, value: str) -> bool:
    """Create the key file with this value unless one exists (atomic, mode 0600); True when written."""
    path = key_path(db_path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as e:
        raise ConfigError(f"{path}: cannot create the signing key file: {e.strerror}.") from e
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(value + "\n")
        f.flush()
        os.fsync(f.fileno())
    return True


def signing_secret(db_path: Path) -> bytes:
    """The signing key: $PLEASEPOINT_SECRET, else the key file beside the database (made on first need)."""
    if from_env := os.environ.get(SECRET_ENV):
        return from_env.encode("utf-8")
    path = key_path(db_path)
    if not path.exists():
        write_key_file(db_path, secrets.token_hex(32))
    try:
        value = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the signing key file: {e}.") from e
    if len(value) < 32:
        raise ConfigError(f"{path}: the signing key file is too short; delete it to make a new one.")
    return value.encode("utf-8")
