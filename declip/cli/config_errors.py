"""One line for a LightningCLI (jsonargparse) configuration error: the key, the value given, what was expected.

jsonargparse explains a rejected value over many lines, nesting the cause under the union or the
``class_path`` it was found in; :func:`explain_parser_error` keeps the key, the class, the init
argument and the cause, e.g. ``model.lr: got 'fast', expected a number (float)``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re

_KEY = re.compile(r'^Parser key "(.+)":')
_PROBLEM = re.compile(r"^Problem with given class_path '(.+)':")
_TYPE = re.compile(r"^Expected a (.+?)\. Got value: (.*)$")
_ALTERNATIVE = re.compile(r"^Expected a (<class '\w+'>)$")
_OPTION = re.compile(r"^Option '(.+)' is not accepted")
_GIVEN = re.compile(r"^Given value: (?:NestedArg\(key='.*?', val=(.*)\)|(.*))$")
_NOISE = (
    "Expected a <class 'NoneType'>",
    "Expected a path but",
    "Does not validate",
    "Subtypes:",
    "Errors:",
    "Given value",
    "Not a valid subclass",
    "Subclass types expect",
    "a class path",
    "a dict ",
)
_NAMES = {
    "float": "a number (float)",
    "int": "a whole number (int)",
    "bool": "true or false",
    "str": "a string",
    "tuple": "a list, e.g. [1.0, 20.0]",
    "list": "a list",
    "dict": "a mapping",
}


def _expected(text: str) -> str:
    plain = re.fullmatch(r"<class '(\w+)'>", text)
    return _NAMES.get(plain.group(1), plain.group(1)) if plain else text


def _arguments(class_path: str) -> list[str]:
    """The init arguments of ``class_path`` (empty when it cannot be imported)."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]
    except (ImportError, AttributeError, ValueError, TypeError):
        return []


def _similar(class_path: str) -> str:
    """`` (did you mean pkg.Close?)`` for a class path whose module holds a similar name."""
    module, _, name = class_path.rpartition(".")
    try:
        names = [n for n in dir(importlib.import_module(module)) if n[:1].isupper()]
    except (ImportError, ValueError):
        return ""
    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean {module}.{close[0]}?" if close else ""


def explain_parser_error(text: str) -> str | None:
    """One line for jsonargparse's error ``text``, or ``None`` when it is not a rejected setting."""
    lines = [line.strip().removeprefix("- ").strip() for line in text.splitlines() if line.strip()]
    if not lines or not (top := _KEY.match(lines[0])):
        return None
    key, class_path, argument, cause = top.group(1), None, None, None
    given = next((m.group(1) or m.group(2) for line in lines if (m := _GIVEN.match(line))), None)
    alternatives = [m.group(1) for line in lines if (m := _ALTERNATIVE.match(line)) and "NoneType" not in line]
    for line in lines[1:]:
        if problem := _PROBLEM.match(line):
            class_path, argument = problem.group(1), None
        elif nested := _KEY.match(line):
            argument = nested.group(1)
        elif line.startswith(_NOISE) or (class_path is None and not _TYPE.match(line)):
            continue
        else:
            cause = line
            break
    if cause is None:  # a union of plain types, each refused
        if not alternatives or given is None:
            return None
        return f"{key}: got {given!r}, expected " + " or ".join(_expected(a) for a in alternatives)
    where = f"{key}: {class_path} init argument {argument!r}" if class_path and argument else key
    if wrong := _TYPE.match(cause):
        value = wrong.group(2)
        inside = f" in {given}" if given and given.startswith("[") and len(given) < 80 and value in given else ""
        return f"{where}: got {value!r}{inside}, expected {_expected(wrong.group(1))}"
    if unknown := _OPTION.match(cause):
        known = ", ".join(_arguments(class_path)) if class_path else ""
        takes = f"; it takes {known}" if known else ""
        return f"{key}: {class_path} has no init argument {unknown.group(1)!r}{takes}"
    if class_path and argument is None:
        return f"{key}: unknown class_path {class_path!r} ({cause}){_similar(class_path)}"
    return f"{where}: {cause}"
