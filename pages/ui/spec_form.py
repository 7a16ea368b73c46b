"""Widgets for RunSpec fields, built from the field metadata in `core.config` (label, unit, help, range, kind).

The widgets carry no limits of their own: a value out of range reaches `core.runs.specs.build_spec`, whose
one-sentence error the page shows, instead of a red field that silently blocks the Start button. Each
recipe keeps its own widget keys, so choosing a recipe fills the form with its defaults, and the values
typed for a recipe come back when the user returns to it. An assignment's fixed values (`lock`) are shown in
their widgets, disabled and marked 🔒, and are not remembered as the user's own.
"""
from __future__ import annotations

import streamlit as st

from core.config import RunSpec, number_text, rate_choices, rate_text


LOCKED = "train_locked"  # session_state key: {field: value} an assignment fixes on the Train page's form
FIXED_NOTE = "Fixed by the assignment."


def lock(recipe: str, fixed: dict) -> None:
    """Show the form's fields named in `fixed` (an assignment's values) with those values, disabled; call before
    the widgets, with {} when no assignment is open (unlocks them)."""
    st.session_state[LOCKED] = dict(fixed)
    for name, value in fixed.items():  # custom augmentation settings (a dict) show as the option "assignment"
        st.session_state[f"train_{recipe}_{name}"] = "assignment" if isinstance(value, dict) else value


def locked(name: str) -> bool:
    """True if field `name` is fixed by the open assignment."""
    return name in st.session_state.get(LOCKED, {})


def help_text(name: str, spec: RunSpec) -> str:
    meta = RunSpec.param(name)
    note = f" {FIXED_NOTE}" if locked(name) else ""
    if meta["min"] is None:
        return meta["help"] + note
    lo, hi = spec.bounds(name)
    unit = f" {meta['unit']}" if meta["unit"] else ""
    return f"{meta['help']} ({number_text(lo)} to {number_text(hi)}{unit}){note}"


def _label(name: str, suffix: str = "") -> str:
    meta = RunSpec.param(name)
    return ("🔒 " if locked(name) else "") + meta["label"] + (f" ({meta['unit']})" if meta["unit"] else "") + suffix


def remembered(recipe: str, name: str, default):
    """The widget key of field `name` for `recipe`, set to the value typed for it before, else `default`."""
    key = f"train_{recipe}_{name}"
    memory = st.session_state.setdefault("train_memory", {}).setdefault(recipe, {})
    if key not in st.session_state:
        st.session_state[key] = memory.get(name, default)
    return key


def remember(recipe: str, name: str, value) -> None:
    if not locked(name):  # an assignment's value is not the user's own choice
        st.session_state.setdefault("train_memory", {}).setdefault(recipe, {})[name] = value


def number(container, recipe: str, name: str, spec: RunSpec, default=None, suffix: str = ""):
    """A number input for RunSpec field `name`, starting at the recipe's default (or `default`)."""
    meta = RunSpec.param(name)
    key = remembered(recipe, name, getattr(spec, name) if default is None else default)
    if meta["kind"] == "int":
        value = container.number_input(_label(name, suffix), step=meta["step"], key=key, help=help_text(name, spec),
                                       disabled=locked(name))
        value = int(value)
    else:
        value = container.number_input(_label(name, suffix), step=meta["step"], format="%g", key=key,
                                       help=help_text(name, spec), disabled=locked(name))
    remember(recipe, name, value)
    return value


def rate(container, recipe: str, name: str, spec: RunSpec, suffix: str = "") -> float:
    """A learning rate picked on a log scale (1, 2, 5 x 10^k), showing exactly the value the run will use."""
    key = remembered(recipe, name, getattr(spec, name))
    lo, hi = spec.bounds(name)
    value = container.select_slider(_label(name, suffix), rate_choices(lo, hi, st.session_state[key]), key=key,
                                    format_func=rate_text, help=help_text(name, spec), disabled=locked(name))
    remember(recipe, name, value)
    return float(value)


def choice(container, recipe: str, name: str, options: list, default, format_func=str, **kwargs):
    key = remembered(recipe, name, default)
    if st.session_state[key] not in options:
        st.session_state[key] = default
    kwargs["disabled"] = kwargs.get("disabled", False) or locked(name)
    value = container.selectbox(_label(name), options, key=key, format_func=format_func,
                                help=RunSpec.param(name)["help"] + (f" {FIXED_NOTE}" if locked(name) else ""), **kwargs)
    remember(recipe, name, value)
    return value


def text(container, recipe: str, name: str, placeholder: str = "") -> str:
    key = remembered(recipe, name, "")
    value = container.text_input(_label(name), key=key, placeholder=placeholder, help=RunSpec.param(name)["help"],
                                 disabled=locked(name))
    remember(recipe, name, value)
    return value


def flag(container, recipe: str, name: str, spec: RunSpec) -> bool:
    """A checkbox for an on/off RunSpec field, starting at the recipe's default."""
    key = remembered(recipe, name, bool(getattr(spec, name)))
    value = container.checkbox(_label(name), key=key, help=RunSpec.param(name)["help"], disabled=locked(name))
    remember(recipe, name, value)
    return bool(value)
