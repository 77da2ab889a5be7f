"""What the compiled core says when pybind11 refuses a call's arguments.

The bindings convert and check every argument themselves (naming it, with
the value given: cpp/python_binding/utils/pybind_Arguments.hpp); what
pybind11 still refuses before they run -- a missing, extra or unknown
argument, a method called on another object -- would read "incompatible
function arguments" and list the overloads. The core's wrappers call
:func:`explain` instead, which binds the call against the signature at the
top of the function's docstring and names what does not fit.
"""
from __future__ import annotations

import importlib
import re
from typing import List, Optional, Tuple

__all__ = ["explain"]

_SHOWN = 60


def _split_top_level(text: str) -> List[str]:
    parts, depth, quote, current = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    if current.strip():
        parts.append(current)
    return parts


def _parameters(function) -> Optional[List[Tuple[str, str, bool]]]:
    """``[(name, annotation, has default)]`` from the first signature of the docstring."""
    doc = (getattr(function, "__doc__", None) or "").lstrip()
    lines = doc.splitlines()
    if lines and lines[0].rstrip().endswith("Overloaded function."):
        lines = [re.sub(r"^\d+\.\s*", "", line) for line in lines if re.match(r"^\d+\.\s", line)]
    match = re.match(r"[\w.]*\((.*)\)\s*->", lines[0] if lines else "")
    if not match:
        return None
    params = []
    for part in _split_top_level(match.group(1)):
        name, _, rest = part.partition(":")
        annotation, _, default = rest.partition("=")
        name = name.split("=")[0].strip()
        params.append((name, annotation.strip(), bool(default.strip()) or "=" in part.split(":")[0]))
    return params


def _describe(value) -> str:
    if value is None:
        return "None"
    text = repr(value)
    return f"{type(value).__name__} {text[:_SHOWN] + '...' if len(text) > _SHOWN else text}"


def _resolve(path: str):
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _fits(value, annotation: str) -> bool:
    """Whether ``value`` could be what ``annotation`` (pybind11's spelling) names;
    True when unsure (the message then lists the whole call)."""
    annotation = annotation.replace("aidge_core.aidge_core.", "aidge_core.")
    if not annotation or annotation in ("object", "typing.Any"):
        return True
    alternatives = [a.strip() for a in annotation.split("|")]
    for alternative in alternatives:
        if alternative == "str" and isinstance(value, str):
            return True
        if alternative == "bool" and type(value).__name__ in ("bool", "bool_"):
            return True
        if alternative in ("typing.SupportsInt", "typing.SupportsIndex", "int") and hasattr(value, "__index__") \
                and not isinstance(value, bool):
            return True
        if alternative in ("typing.SupportsFloat", "float") and hasattr(value, "__float__") \
                and not isinstance(value, (str, bytes, bool)):
            return True
        if alternative == "bytes" and isinstance(value, (bytes, bytearray)):
            return True
        if alternative.startswith("collections.abc.Callable") and callable(value):
            return True
        if alternative.startswith(("collections.abc.Sequence", "list[")) and isinstance(value, (list, tuple)):
            return True
        if "." in alternative and "[" not in alternative:
            cls = _resolve(alternative)
            if cls is None or isinstance(cls, type) and isinstance(value, cls):
                return True
    return False


def explain(function, qualname: str, args: tuple, kwargs: dict) -> str:
    """The TypeError message for a call pybind11 refused."""
    params = _parameters(function)
    if params is None:
        return f"{qualname}(): the arguments ({', '.join(_describe(a) for a in args)}) do not fit its signature"
    has_self = bool(params) and params[0][0] == "self"
    names = [name for name, _, _ in params if name not in ("self", "*args", "**kwargs")]
    listed = ", ".join(names) if names else "none"
    bound = {}
    for (name, annotation, _), value in zip(params, args):
        bound[name] = value
    given = len(args) - (1 if has_self else 0)
    if len(args) > len(params):
        return (f"{qualname}() takes at most {len(names)} argument{'s' if len(names) != 1 else ''} "
                f"({listed}), got {given}")
    for name, value in kwargs.items():
        if name not in names:
            return f"{qualname}() got an unexpected keyword argument '{name}'; its arguments are: {listed}"
        if name in bound:
            return f"{qualname}() got multiple values for argument '{name}'"
        bound[name] = value
    for name, annotation, has_default in params:
        if name not in bound and not has_default:
            kind = "" if annotation in ("", "object") else f" ({annotation})"
            return f"{qualname}() missing argument '{name}'{kind}"
    for name, annotation, _ in params:
        if name in bound and not _fits(bound[name], annotation):
            if name == "self":
                return (f"{qualname}() must be called on a {qualname.split('.')[0]} object: argument 'self' "
                        f"is {_describe(bound[name])}")
            return (f"{qualname}(): argument '{name}' must be "
                    f"{annotation.replace('aidge_core.aidge_core.', 'aidge_core.')}, got {_describe(bound[name])}")
    # every value has a fitting type: one is out of the range of the C++ type it converts to
    given = [f"'{k}' = {_describe(v)}" for k, v in bound.items() if k != "self"]
    return (f"{qualname}(): argument{'s' if len(given) > 1 else ''} {', '.join(given)} do not fit the C++ "
            f"signature ({', '.join(f'{n}: {a}' for n, a, _ in params if n != 'self')}): a number out of its "
            f"type's range?")
