"""Declared options: what a method or an experiment accepts, validated at the boundary.

Each method declares its options (name, type, default, allowed values, where the
default comes from); the experiment declares the common ones. The command line
(:mod:`aidge_incremental.cli`) and the validation of configuration files are
generated from these declarations, so adding a method is one file.

Configuration files are untrusted: :func:`load_config_file` reads JSON or YAML
with a bound on the file's size and on what YAML aliases may expand to (a few
hundred bytes of nested aliases can stand for a billion values).
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import pathlib
from dataclasses import dataclass
from typing import Any, ClassVar, Collection, Dict, Iterable, Optional, Tuple

__all__ = ["ConfigError", "Option", "OptionSet", "load_config_file", "merge_options", "resolve_options",
           "MAX_CONFIG_BYTES", "MAX_CONFIG_NODES"]

#: a configuration file larger than this is refused before it is parsed
MAX_CONFIG_BYTES = 1 << 20
#: values a configuration file may expand to (YAML aliases counted each time they are used)
MAX_CONFIG_NODES = 1_000_000
#: the largest integer an option accepts unless it says otherwise (what the C++ core takes as int)
MAX_INT = 2 ** 31 - 1


class ConfigError(ValueError):
    """A configuration value or file is invalid; the message names the option or the file."""


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               dict: "a mapping of names to values"}


@dataclass(frozen=True)
class Option:
    """One option: ``type`` is int, float, str, bool or dict; ``sequence`` makes it a list
    of those (at most ``max_length`` items); ``optional`` admits None (null).
    ``minimum``/``maximum`` bound numbers (and each item of a list); ``choices``
    lists the admissible strings (any collection of names, e.g. a
    :class:`~aidge_incremental.registry.Registry`, read when a value is checked:
    a name registered later is admitted). ``source`` says where the default comes from."""
    name: str
    type: type
    default: Any
    help: str
    source: str = ""
    choices: Optional[Collection[str]] = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    sequence: bool = False
    max_length: int = 1024
    min_length: int = 1
    optional: bool = False

    def with_default(self, default, source: str) -> "Option":
        """The same option with another default (a method's own), citing its source."""
        return dataclasses.replace(self, default=default, source=source)

    def describe(self) -> str:
        kind = _TYPE_NAMES[self.type]
        if self.sequence:
            kind = f"a list of {kind.split(' ', 1)[-1]}s"
        if self.choices is not None:
            kind = "one of " + ", ".join(self.choices)
        return kind

    def check(self, value):
        """The value, normalised (a float for a float option, a list for a sequence),
        or :class:`ConfigError` naming the option."""
        if value is None:
            if self.optional:
                return None
            raise ConfigError(f"{self.name} must be {self.describe()}, got null")
        if self.sequence:
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{self.name} must be a list of values (e.g. [{self.default[0] if self.default else 1}]), "
                                  f"got {value!r} ({type(value).__name__})")
            if len(value) < self.min_length:
                raise ConfigError(f"{self.name} must have at least {self.min_length} item(s), got {len(value)}")
            if len(value) > self.max_length:
                raise ConfigError(f"{self.name} has {len(value)} items; at most {self.max_length} are allowed")
            return [self._check_one(v, f"{self.name}[{i}]") for i, v in enumerate(value)]
        return self._check_one(value, self.name)

    def _check_one(self, value, label):
        if self.type is dict:  # its entries are checked by whoever declares it
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise ConfigError(f"{label} must be a mapping of names to values, got {value!r}")
            return dict(value)
        if self.type is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{label} must be true or false, got {value!r}")
            return value
        if self.type is str:
            if not isinstance(value, str):
                raise ConfigError(f"{label} must be {self.describe()}, got {value!r} ({type(value).__name__})")
            if self.choices is not None and value not in self.choices:
                raise ConfigError(f"{label} must be one of {', '.join(self.choices)}; got {value!r}")
            if not value:
                raise ConfigError(f"{label} must not be empty")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label} must be {_TYPE_NAMES[self.type]}, got {value!r} ({type(value).__name__})")
        if self.type is int:
            if not isinstance(value, int):
                raise ConfigError(f"{label} must be an integer, got {value!r}")
            maximum = MAX_INT if self.maximum is None else self.maximum
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(f"{label} must be a finite number, got {value!r}")
            maximum = self.maximum
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{label} must be >= {self.minimum}, got {value!r}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{label} must be <= {maximum}, got {value!r}")
        return value


def merge_options(*groups: Iterable[Option]) -> Tuple[Option, ...]:
    """The options of several groups, in order; a later declaration of a name
    replaces an earlier one (a method's own default for a component's option)."""
    merged: Dict[str, Option] = {}
    for group in groups:
        for option in group:
            merged[option.name] = option
    return tuple(merged.values())


def resolve_options(options: Iterable[Option], values: dict, owner: str) -> dict:
    """Every option's value: the given one checked against its declaration, else
    the declared default (written once, in the declaration). Raises ConfigError
    for an unknown name (with the closest known one)."""
    declared = {o.name: o for o in options}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        parts = []
        for name in unknown:
            close = difflib.get_close_matches(name, list(declared), n=1)
            parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"{owner} has no option {', '.join(parts)}; its options: "
                          f"{', '.join(declared) or 'none'}")
    out = {}
    for name, option in declared.items():
        value = option.check(values[name]) if name in values else option.default
        out[name] = list(value) if isinstance(value, list) else value
    return out


class OptionSet:
    """Values of declared options (``options``), checked at construction, each
    default written once in its declaration; read as attributes, immutable
    (:meth:`replace` makes a changed copy). Subclasses add checks that span
    several options in :meth:`validate`."""
    options: ClassVar[Tuple[Option, ...]] = ()

    def __init__(self, **values):
        object.__setattr__(self, "_values", resolve_options(self.options, values, type(self).__name__))
        self.validate()

    def validate(self) -> None:
        """Checks across options (raise ConfigError); called by the constructor."""

    def __getattr__(self, name):
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__} has no option {name!r}")

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable: use .replace({name}=...)")

    def __eq__(self, other):
        return type(other) is type(self) and other._values == self._values

    def __repr__(self):
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"

    def replace(self, **changes):
        """A copy with ``changes`` (checked as at construction)."""
        return type(self)(**{**self._values, **changes})

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v
                for k, v in self._values.items()}


# ------------------------------------------------------------------ files --

def load_config_file(path) -> dict:
    """The mapping of option names to values in a JSON or YAML (``.yaml``/``.yml``)
    file; dashes in names become underscores. Raises :class:`ConfigError` naming
    the file for an unreadable, oversized or malformed file."""
    path = pathlib.Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ConfigError(f"config file {path} is not a regular file")
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} has {size} bytes; at most {MAX_CONFIG_BYTES} are read")
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text: {e}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        data = _load_yaml(text, path)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config file {path}: invalid JSON at line {e.lineno}, column {e.colno}: "
                              f"{e.msg}") from None
        except RecursionError:
            raise ConfigError(f"config file {path}: values nested too deeply") from None
        _check_size(data, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values, "
                          f"got a {type(data).__name__}")
    out = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ConfigError(f"config file {path}: option names must be strings, got {key!r}")
        name = key.replace("-", "_")
        if name in out:
            raise ConfigError(f"config file {path}: option {name!r} is given twice (as {key!r} and its "
                              "other spelling); keep one")
        out[name] = value
    return out


def _load_yaml(text: str, path) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError(f"config file {path}: YAML needs PyYAML (pip install pyyaml), or use JSON") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        _count_yaml_nodes(node, path)
        return yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path}: invalid YAML: {e}") from None
    except RecursionError:
        raise ConfigError(f"config file {path}: values nested too deeply") from None


def _count_yaml_nodes(root, path) -> int:
    """How many values the node graph stands for once every alias is expanded
    (computed on the shared graph, without expanding it); refuses cycles."""
    import yaml
    sizes, active = {}, set()

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(f"config file {path}: a YAML alias refers to itself (recursive value)")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > MAX_CONFIG_NODES:
                raise ConfigError(f"config file {path} expands to more than {MAX_CONFIG_NODES} values "
                                  f"(YAML aliases included): refused")
        active.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _check_size(data, path) -> None:
    count, stack = 0, [data]
    while stack:
        value = stack.pop()
        count += 1
        if count > MAX_CONFIG_NODES:
            raise ConfigError(f"config file {path} holds more than {MAX_CONFIG_NODES} values: refused")
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
