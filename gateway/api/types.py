"""Field types for the HTTP API whose OpenAPI schema states exactly what the server accepts.

An integer is what JSON Schema calls one: a JSON number with no fractional part (`5`, and `5.0`). pydantic's lax
mode also takes `true` and `"5"`, which the schema refuses; its strict mode refuses `5.0`, which the schema allows.

A name's surrounding white space is removed; a name of white space only is refused. The schema says so with a
pattern (at least one character that is not white space) written as an explicit class: `\\s` means different
characters in ECMAScript (JSON Schema's dialect, which counts U+FEFF), Python (which counts U+001C-U+001F) and
pydantic-core's Rust engine. White space here is Unicode's White_Space property, what pydantic's
`strip_whitespace` and the services' contracts strip.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

# Unicode White_Space, as (first, last) code points
_WHITE_SPACE = ((0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
                (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000))
BLANK = "".join(chr(c) for first, last in _WHITE_SPACE for c in range(first, last + 1))
NOT_BLANK = "[^" + "".join(f"\\u{first:04x}" + (f"-\\u{last:04x}" if last != first else "")
                           for first, last in _WHITE_SPACE) + "]"


def _stripped(value: str) -> str:
    stripped = value.strip(BLANK)
    if not stripped:
        raise PydanticCustomError("blank", "must contain a character that is not white space")
    return stripped


# A name: 1-200 characters as sent (the schema's minLength, maxLength), at least one of them not white space (the
# schema's pattern), kept without its surrounding white space.
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(_stripped),
    Field(json_schema_extra={"pattern": NOT_BLANK},
          description="surrounding white space is removed; white space only is refused"),
]


_JSON_KINDS = {bool: "true or false", str: "a string", type(None): "null", list: "an array", dict: "an object"}


def _json_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer (a JSON number, not {kind})",
                                  {"kind": _JSON_KINDS.get(type(value), type(value).__name__)})
    return value  # then int: 5.0 becomes 5, 5.5 is refused


Integer = Annotated[int, BeforeValidator(_json_number)]
