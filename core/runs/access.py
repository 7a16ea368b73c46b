"""Who is acting, and what they may see and do with a run: owners, teachers, published runs.

Every run records its `owner`. The acting user is given explicitly by the dashboard (from its login or
trusted header, `pages.ui.identity`) and is otherwise `current()`: $TUNELAB_USER, or the operating-system
user (the single-user local default: every run is the OS user's, so nothing changes for one person).
Teachers ($TUNELAB_TEACHERS, names separated by commas) see and manage every run and may publish runs; a
student sees their own runs and the published ones, and may stop, resume, rename, tag or delete only their
own. The checks live here and are called by `core.runs.runner` and `core.runs.store`, so the command line
and every page obey them. Imports neither TensorFlow nor Streamlit.
"""
from __future__ import annotations

import getpass
import os
import re

_NAME = re.compile(r"^[\w.@+-]{1,128}$")


def os_user() -> str:
    """The operating-system user running this process (the owner of runs made before owners were recorded)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return "local"


def check_name(name: str, where: str = "TUNELAB_USER") -> str:
    """`name` stripped if it is a usable user name (letters, digits, `. _ @ + -`), else ValueError."""
    name = (name or "").strip()
    if not _NAME.match(name):
        raise ValueError(f"{where} gave the user name {name!r}: use 1-128 letters, digits or . _ @ + - (e.g. an "
                         f"e-mail address or a login).")
    return name


def current() -> str:
    """The user the command line acts as: $TUNELAB_USER, or the operating-system user."""
    text = os.environ.get("TUNELAB_USER", "").strip()
    return check_name(text) if text else os_user()


def acting(user: str | None) -> str:
    """`user` checked, or `current()` when None."""
    return current() if user is None else check_name(user, "The acting user")


def teachers() -> set[str]:
    """The names in $TUNELAB_TEACHERS (comma-separated)."""
    return {t.strip() for t in os.environ.get("TUNELAB_TEACHERS", "").split(",") if t.strip()}


def is_teacher(user: str | None = None) -> bool:
    return acting(user) in teachers()


def can_see(run: dict, user: str | None = None) -> bool:
    """True if `user` may see `run`: their own, a published one, or any run for a teacher."""
    user = acting(user)
    return run.get("owner") == user or bool(run.get("published")) or user in teachers()


def visible(runs: list[dict], user: str | None = None) -> list[dict]:
    user = acting(user)
    return [r for r in runs if can_see(r, user)]


def require_owner(run: dict, action: str, user: str | None = None) -> None:
    """PermissionError (one sentence) unless `user` owns `run` or is a teacher; `action` is e.g. "stop"."""
    user = acting(user)
    if run.get("owner") == user or user in teachers():
        return
    raise PermissionError(f"Run {run['id']} belongs to {run.get('owner') or 'nobody'}, not {user}: only its owner "
                          f"or a teacher (TUNELAB_TEACHERS) can {action} it.")


def require_teacher(action: str, user: str | None = None) -> None:
    user = acting(user)
    if user not in teachers():
        raise PermissionError(f"Only a teacher can {action}, and {user} is not one: add the name to TUNELAB_TEACHERS "
                              f"(comma-separated) where the lab is started.")


# -- who is using the dashboard ----------------------------------------------------------------------------------------

def identity_mode() -> str:
    """How the dashboard learns its user: "header" when $TUNELAB_TRUSTED_USER_HEADER names the header an
    authenticating reverse proxy sets, "oidc" when $TUNELAB_AUTH is "oidc" (Streamlit's st.login, configured in
    .streamlit/secrets.toml), else "local" (the single-user default: the dashboard acts as `current()`)."""
    if os.environ.get("TUNELAB_TRUSTED_USER_HEADER", "").strip():
        return "header"
    auth = os.environ.get("TUNELAB_AUTH", "").strip().lower()
    if auth not in ("", "local", "oidc"):
        raise ValueError(f"TUNELAB_AUTH is {auth!r}: set it to oidc (Streamlit's login, see the README) or unset it.")
    return "oidc" if auth == "oidc" else "local"


def trusted_header() -> str:
    """The header name in $TUNELAB_TRUSTED_USER_HEADER ("" when unset: no header is trusted)."""
    return os.environ.get("TUNELAB_TRUSTED_USER_HEADER", "").strip()


def header_user(headers) -> str | None:
    """The user named by the trusted header in `headers` (a mapping, any case), or None when it is absent.

    Honoured only when $TUNELAB_TRUSTED_USER_HEADER names it: the proxy in front must set (and overwrite) it."""
    name = trusted_header().lower()
    if not name:
        return None
    value = next((v for k, v in dict(headers or {}).items() if k.lower() == name), None)
    return check_name(value, f"The header {name}") if value and value.strip() else None


def oidc_user(claims) -> str | None:
    """The user of a Streamlit login (`st.user`): its e-mail, else its subject; None when not logged in."""
    claims = dict(claims or {})
    if not claims.get("is_logged_in"):
        return None
    value = claims.get("email") or claims.get("preferred_username") or claims.get("sub")
    return check_name(str(value), "The login's e-mail") if value else None
