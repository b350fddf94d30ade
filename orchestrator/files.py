"""Opening a file by its real path without following a link swapped in since it was listed."""

from __future__ import annotations

import errno
import os
from typing import IO


def opened_exactly(location: str) -> IO[bytes] | None:
    """Open ``location`` for reading bytes if no symlink leads to it now, else return None."""
    try:
        fd = os.open(location, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None
        raise
    opened = f"/proc/self/fd/{fd}"
    if os.path.exists(opened) and os.path.realpath(opened) != location:
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")
