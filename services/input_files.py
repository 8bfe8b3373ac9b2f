"""Reading files a user names, safely: regular files only, size checked before reading, opened without blocking.
The CLI reads templates, parameters and health files through it, and so does the lint gate on a worker; every
refusal is an ``InputError`` naming the file, what is wrong and what to do."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class InputError(Exception):
    """A user's input is unusable. ``str(exc)`` is the one-paragraph message to print."""


# --------------------------------------------------------------------------------------------------- JSON files


# Size limits of what a user hands us, checked before a byte is read. ARM refuses a deployment request over 4 MB
# (the template is most of it); a file may be larger than what it deploys (indentation, comments), so files get
# 4x that room, and the template's compact JSON is held to ARM's 4 MB before anything is stored.
ARM_REQUEST_BYTES = 4 * 1024 * 1024
MAX_TEMPLATE_FILE_BYTES = 4 * ARM_REQUEST_BYTES
MAX_PARAMETERS_FILE_BYTES = 4 * ARM_REQUEST_BYTES
MAX_SMALL_FILE_BYTES = 1024 * 1024  # health declarations, CA files
# Parameter values travel in the workflow's request (Temporal refuses a payload over 2 MB) and in ARM's request
# (4 MB with the template): all values together, as JSON, must stay under this.
MAX_PARAMETER_VALUES_BYTES = 1024 * 1024

_FILE_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def read_input_file(path: str | Path, *, what: str, flag: str, max_bytes: int) -> bytes:
    """The bytes of a regular file the user named with ``flag``, at most ``max_bytes``; anything else (missing, a
    directory, a device like /dev/zero, a FIFO that would block, a folder that cannot be entered, too large) is an
    ``InputError`` naming the file — checked before reading, and the file is opened without blocking."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(
            f"The {what} '{path}' given with {flag} does not exist. Check the path (relative paths are resolved "
            f"from the current directory, {Path.cwd()})."
        ) from None
    except IsADirectoryError:
        raise InputError(f"The {what} '{path}' given with {flag} is a directory; name the file inside it.") from None
    except PermissionError:
        raise InputError(
            f"The {what} '{path}' given with {flag} cannot be opened (permission denied: the file, or a folder on "
            "its path, is not readable by you). Check its permissions, or copy it somewhere readable."
        ) from None
    except OSError as exc:
        raise InputError(
            f"The {what} '{path}' given with {flag} cannot be opened ({exc.strerror or exc}). Check the path."
        ) from None
    try:
        info = os.fstat(fd)
        kind = stat.S_IFMT(info.st_mode)
        if kind == stat.S_IFDIR:
            raise InputError(f"The {what} '{path}' given with {flag} is a directory; name the file inside it.")
        if kind != stat.S_IFREG:
            described = _FILE_KINDS.get(kind, "not a regular file")
            raise InputError(
                f"The {what} '{path}' given with {flag} is {described}, not a regular file. Give a file "
                "(save the content to one first if it comes from a pipe or a process)."
            )
        if info.st_size > max_bytes:
            raise InputError(_too_large(what, path, flag, info.st_size, max_bytes))
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(
            f"The {what} '{path}' given with {flag} cannot be read ({exc.strerror or exc}). "
            "Check its permissions, or copy it somewhere readable."
        ) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew after the check
        raise InputError(_too_large(what, path, flag, len(data), max_bytes))
    return data


def _too_large(what: str, path: str | Path, flag: str, size: int, limit: int) -> str:
    return (
        f"The {what} '{path}' given with {flag} is {size:,} bytes; at most {limit:,} bytes ({limit // 1024 // 1024} "
        "MB) are read (ARM refuses deployment requests over 4 MB). Split it (modules, smaller parameters files)."
    )
