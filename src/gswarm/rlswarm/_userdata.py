"""Read ORG_ID from ``modal-login/temp-data/userData.json`` (private).

generations.md §2.4: the file is an object keyed by orgId, written by the
modal-login server; the script takes the *first key* as ORG_ID.
"""

from __future__ import annotations

import json
from pathlib import Path

from gswarm.errors import LoginError

USER_DATA = Path("modal-login/temp-data/userData.json")


def org_id_from_checkout(checkout: Path) -> str | None:
    """The first key of ``<checkout>/modal-login/temp-data/userData.json``, or None if the file is missing.

    Raises :class:`LoginError` naming the file when it is unreadable, not UTF-8, not JSON,
    not an object, or empty.
    """
    path = Path(checkout) / USER_DATA
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LoginError(f"cannot read {path}: {exc.strerror}; fix its permissions or log in again") from None
    except UnicodeDecodeError as exc:  # binary garbage (disk error, interrupted copy)
        raise LoginError(f"{path} is not valid JSON (not UTF-8 text: bad byte at offset {exc.start}); "
                         "delete it and log in again, or pass --org-id") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise LoginError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); "
                         "delete it and log in again, or pass --org-id") from None
    if not isinstance(data, dict) or not data:
        raise LoginError(f"{path} holds no ORG_ID (expected an object keyed by orgId); "
                         "delete it and log in again, or pass --org-id")
    org_id = str(next(iter(data)))
    if not org_id.strip():
        raise LoginError(f"{path} has an empty ORG_ID key; delete it and log in again, or pass --org-id")
    return org_id
