"""Secrets read from files: the API token and telemetry keys.

A secret file must be a regular file that other users cannot read (mode
0600 or 0640); anything else is refused with a message saying how to fix it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MIN_KEY = 16  # characters of an HMAC key or token, at least


class SecretFileError(ValueError):
    """A secret file is missing, unsafe or malformed; the message says which and why."""


def read_secret_file(path: str | Path, what: str) -> str:
    """The file's text (stripped); SecretFileError if others can read it or it is empty."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError(f"{what} {path}: not a regular file")
        if info.st_mode & (stat.S_IROTH | stat.S_IWOTH):
            raise SecretFileError(f"{what} {path}: readable or writable by every user (mode "
                                  f"{stat.S_IMODE(info.st_mode):04o}); run chmod 600 {path}")
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretFileError(f"{what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SecretFileError(f"{what} {path}: not UTF-8 text") from None
    if not text:
        raise SecretFileError(f"{what} {path}: empty")
    return text


def read_token_file(path: str | Path) -> str:
    """The bearer token in `path` (one line, at least MIN_KEY characters)."""
    token = read_secret_file(path, "API token file")
    if len(token.split()) != 1 or len(token) < MIN_KEY:
        raise SecretFileError(f"API token file {path}: expected one token of at least "
                              f"{MIN_KEY} characters without spaces")
    return token


def read_keys_file(path: str | Path) -> dict[str, bytes]:
    """Telemetry keys: lines `NODE KEY` ('#' starts a comment) -> {node: key bytes}."""
    keys: dict[str, bytes] = {}
    for number, line in enumerate(read_secret_file(path, "keys file").splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 2 or len(words[1]) < MIN_KEY:
            raise SecretFileError(f"keys file {path}:{number}: expected 'NODE KEY' with a key "
                                  f"of at least {MIN_KEY} characters")
        if words[0] in keys:
            raise SecretFileError(f"keys file {path}:{number}: node {words[0]!r} given twice")
        keys[words[0]] = words[1].encode()
    return keys


def read_key_file(path: str | Path) -> bytes:
    """One agent's key (the file holds only the key)."""
    key = read_secret_file(path, "key file")
    if len(key.split()) != 1 or len(key) < MIN_KEY:
        raise SecretFileError(f"key file {path}: expected one key of at least {MIN_KEY} "
                              "characters without spaces")
    return key.encode()
