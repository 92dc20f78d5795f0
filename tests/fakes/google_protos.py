"""Request bodies checked as Google's front end parses them: protobuf's own JSON parser
against the published Generative Language protos (PyPI `google-ai-generativelanguage`,
v1beta), which refuses an unknown name, a wrong type or an enum value the API does not
have, and takes both spellings of a name (camelCase, snake_case), as the API does.

Fields the API takes that the published protos lack are checked by hand, in `NEWER` only:
the one place to look when the protos catch up or the API moves on.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from google.ai.generativelanguage_v1beta.types import GenerateContentRequest
from google.protobuf import json_format

# (path of names, camelCase) -> the values the API takes; snake_case is taken too.
NEWER: dict[tuple[str, ...], frozenset[str]] = {
    ("generationConfig", "thinkingConfig", "thinkingLevel"): frozenset(
        {"THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH"}
    ),
}
_UNKNOWN = re.compile(r'has no field named "([^"]+)"')


def request_problem(body: dict[str, Any]) -> str | None:
    """Why the API would refuse this generateContent body, in its words where we know
    them ('Unknown name "x": Cannot find field.')."""
    body = copy.deepcopy(body)
    for path, values in NEWER.items():
        *parents, name = path
        holder: Any = body
        for key in parents:
            holder = named(holder, key)
        for spelling in (name, _snake(name)):
            if isinstance(holder, dict) and spelling in holder:
                value = holder.pop(spelling)
                if value not in values:
                    where = _snake(".".join(path))
                    return f"Invalid value at '{where}' ({value!r})"
    try:
        json_format.ParseDict(body, GenerateContentRequest.pb()(), ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        if unknown := _UNKNOWN.search(str(exc)):
            return f'Unknown name "{unknown.group(1)}": Cannot find field.'
        return str(exc)
    return None


def named(holder: Any, key: str) -> Any:
    """`holder[key]` in either spelling the API takes (camelCase or snake_case)."""
    if not isinstance(holder, dict):
        return None
    return holder.get(key, holder.get(_snake(key)))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
