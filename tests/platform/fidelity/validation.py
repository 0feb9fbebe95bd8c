"""Every request against its operation's constraints in botocore's service model.

botocore's client-side ParamValidator checks types, required members and minimums; it
sends a value that breaks a `pattern`, a `max` length, an `enum`, a numeric range or a list
length as it is, and AWS refuses it before the operation runs. moto mostly takes it. Here
the request is decoded per protocol (tests/platform/requests.py), walked against the
operation's input shape, and refused with every violation, in AWS's wording:

    1 validation error detected: Value 'x' at 'rootDirectory.path' failed to satisfy
    constraint: Member must satisfy regular expression pattern: ^(\\/|...)$

Paths name members with a lower-case first letter, list items as `tags.1.member.key`
(1-based); members of lists and maps of scalars are reported at the list or map ("Member
must satisfy constraint: [...]"). Sensitive members (botocore's `sensitive` trait) are
reported without their value. The error code is the service's (CODES; by protocol else:
`ValidationException` for JSON and REST-JSON APIs, `ValidationError` for query APIs); EC2
has its own `InvalidParameterValue`. S3 is not checked: it does not answer with these
validation errors. CBOR bodies (the tagging API) are not decoded.

botocore's patterns are Java regular expressions, matched against the whole value.
:func:`compiled` translates them for the `regex` module (Java's ASCII `\\w \\d \\s`, its
ASCII POSIX classes such as `\\p{Print}`, `&&` class intersections); a pattern it cannot
translate is skipped, never refused on, and tests/unit/test_fidelity_validation.py
counts those. Matching has a time limit; a value that exceeds it is not refused either.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import regex
from botocore.model import Shape

from tests.platform.requests import AwsRequest, parameters

if TYPE_CHECKING:  # the package imports this module while it defines Refusal
    from tests.platform.fidelity import Refusal

log = logging.getLogger("wpenv.fidelity.validation")

# Keyed by SigV4 signing name: the code a service gives for a constraint violation.
CODES = {
    # Amazon Cognito user pools API reference, every operation: InvalidParameterException
    # ("1 validation error detected: Value ... at 'userPoolId' failed to satisfy ...").
    "cognito-idp": "InvalidParameterException",
    # CloudWatch Logs API reference, CreateLogGroup and others: InvalidParameterException.
    "logs": "InvalidParameterException",
    # Amazon ECS API reference, ClientException: "These errors are usually caused by a
    # client action". ECS does not document which code its constraint errors carry; this is
    # the one its API reference gives for invalid requests in general (InvalidParameterException
    # is the other candidate).
    "ecs": "ClientException",
    # Resource Groups Tagging API reference: InvalidParameterException.
    "tagging": "InvalidParameterException",
}
JSON_CODE = "ValidationException"  # "Common Errors" of the JSON APIs
QUERY_CODE = "ValidationError"  # IAM, STS, ELBv2: "Common Errors" of the query APIs
# "Error codes for the Amazon EC2 API": InvalidParameterValue, "Value (x) for parameter p is
# invalid."; EC2's own explanation after that varies by parameter, the constraint stands in.
EC2_CODE = "InvalidParameterValue"
UNCHECKED_SERVICES = frozenset({"s3"})
MATCH_TIMEOUT_SECONDS = 0.05
# Java's POSIX character classes are US-ASCII ("Pattern", java.util.regex).
POSIX = {
    "Lower": "a-z", "Upper": "A-Z", "ASCII": "\\x00-\\x7F", "Alpha": "A-Za-z",
    "Digit": "0-9", "Alnum": "0-9A-Za-z", "Punct": "!-/:-@\\[-`{-~", "Graph": "!-~",
    "Print": " -~", "Blank": " \\t", "Cntrl": "\\x00-\\x1F\\x7F", "XDigit": "0-9A-Fa-f",
    "Space": " \\t\\n\\x0B\\f\\r",
}
# Java's \w \d \s are ASCII unless UNICODE_CHARACTER_CLASS, which models never set.
SHORTHANDS = {"w": "A-Za-z0-9_", "d": "0-9", "s": " \\t\\n\\x0B\\f\\r"}


@dataclass(frozen=True)
class Violation:
    """One failed constraint: where, the value as AWS prints it, and the constraint."""

    path: str
    value: str | None  # None: not shown (sensitive)
    constraint: str

    def text(self) -> str:
        """AWS's sentence for it."""
        shown = "Value" if self.value is None else f"Value '{self.value}'"
        return f"{shown} at '{self.path}' failed to satisfy constraint: {self.constraint}"


# --- Java patterns ---------------------------------------------------------------------------


def translate(pattern: str) -> tuple[str, bool] | None:
    """`pattern` (Java syntax) in the `regex` module's, and whether it needs its VERSION1
    (nested character classes, `&&`); None if it cannot be translated."""
    out: list[str] = []
    i, depth, nested = 0, 0, "&&" in pattern
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            start = i
            piece, i = _escape(pattern, i, depth)
            if piece is None:
                return None
            nested = nested or (depth > 0 and piece.startswith("["))
            out.append(piece)
            expanded = piece != pattern[start:i] and pattern[start + 1] != "u"  # a class
            if depth and expanded and pattern.startswith("-", i) and \
                    not pattern.startswith("-]", i):
                out.append("\\-")  # Java: a hyphen after a class escape is literal
                i += 1
            continue
        if char == "[":
            nested = nested or depth > 0
            depth += 1
        elif char == "]" and depth and pattern[i - 1] != "[":
            depth -= 1
        out.append(char)
        i += 1
    return "".join(out), nested


def _escape(pattern: str, i: int, depth: int) -> tuple[str | None, int]:
    """The translation of the escape at `i`, and where the pattern goes on."""
    nxt = pattern[i + 1]
    if nxt in "pP" and pattern.startswith("{", i + 2):
        end = pattern.find("}", i + 3)
        if end < 0:
            return None, i
        name = pattern[i + 3:end].removeprefix("Is")
        if name not in POSIX:
            return pattern[i:end + 1], end + 1  # Unicode properties: the same in `regex`
        return _ranges(POSIX[name], nxt == "P", depth), end + 1
    if nxt.lower() in SHORTHANDS:
        return _ranges(SHORTHANDS[nxt.lower()], nxt.isupper(), depth), i + 2
    if nxt == "u":
        return _unicode(pattern, i), i + (12 if _surrogates(pattern, i) else 6)
    if nxt in "QEG":
        return None, i  # quoting and \G: rare in models, not worth translating
    return ("\\Z" if nxt == "z" else pattern[i:i + 2]), i + 2


def _ranges(ranges: str, negated: bool, depth: int) -> str:
    """A class of `ranges`; inside a class a negated one is a nested set (VERSION1)."""
    if depth and not negated:
        return ranges
    return f"[{'^' if negated else ''}{ranges}]"


def _surrogates(pattern: str, i: int) -> bool:
    """Whether `\\uHHHH\\uHHHH` at `i` is a UTF-16 surrogate pair (Java's way past U+FFFF)."""
    high, low = pattern[i + 2:i + 6], pattern[i + 8:i + 12]
    return (pattern[i + 6:i + 8] == "\\u" and len(low) == 4
            and "D800" <= high.upper() <= "DBFF" and "DC00" <= low.upper() <= "DFFF")


def _unicode(pattern: str, i: int) -> str:
    if not _surrogates(pattern, i):
        return pattern[i:i + 6]
    high, low = int(pattern[i + 2:i + 6], 16), int(pattern[i + 8:i + 12], 16)
    return f"\\U{0x10000 + (high - 0xD800) * 0x400 + (low - 0xDC00):08X}"


@cache
def compiled(pattern: str) -> regex.Pattern[str] | None:
    """The model's `pattern`, compiled; None for one that is skipped (logged once)."""
    translated = translate(pattern)
    if translated is None:
        log.info("pattern not translated, not checked: %s", pattern)
        return None
    text, nested = translated
    try:
        return regex.compile(text, regex.V1 if nested else regex.V0)
    except (regex.error, ValueError, OverflowError):
        log.info("pattern does not compile, not checked: %s", pattern)
        return None


def matches(pattern: str, value: str) -> bool | None:
    """Whether all of `value` matches `pattern`; None when that cannot be told."""
    found = compiled(pattern)
    if found is None:
        return None
    try:
        return found.fullmatch(value, timeout=MATCH_TIMEOUT_SECONDS) is not None
    except TimeoutError:
        return None


# --- walking a value against its shape -------------------------------------------------------


def _name(name: str) -> str:
    return name[:1].lower() + name[1:]


def render(value: Any) -> str:
    """A value as AWS's messages print it (Java's toString of the decoded input)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(render(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={render(v)}" for k, v in value.items()) + "}"
    return str(value)


def scalar_constraints(shape: Shape, value: Any) -> Iterator[str]:
    """The constraints of a string or number shape that `value` breaks, in AWS's words."""
    meta = shape.metadata
    if isinstance(value, str) and shape.type_name == "string":
        pattern = meta.get("pattern")
        if pattern is not None and matches(str(pattern), value) is False:
            yield f"Member must satisfy regular expression pattern: {pattern}"
        yield from _length(meta, len(value))
        enum = meta.get("enum")
        if enum and value not in enum:
            yield f"Member must satisfy enum value set: [{', '.join(enum)}]"
    elif isinstance(value, int | float) and not isinstance(value, bool) and \
            shape.type_name in ("integer", "long", "float", "double"):
        if "max" in meta and value > meta["max"]:
            yield f"Member must have value less than or equal to {render(meta['max'])}"
        if "min" in meta and value < meta["min"]:
            yield f"Member must have value greater than or equal to {render(meta['min'])}"


def _length(meta: Mapping[str, Any], length: int) -> Iterator[str]:
    if "max" in meta and length > meta["max"]:
        yield f"Member must have length less than or equal to {meta['max']}"
    if "min" in meta and length < meta["min"]:
        yield f"Member must have length greater than or equal to {meta['min']}"


def _all_scalar_constraints(shape: Shape) -> list[str]:
    """Every constraint of a scalar shape, as AWS lists them for list or map members."""
    meta, found = shape.metadata, []
    if "max" in meta:
        kind = "length" if shape.type_name == "string" else "value"
        found.append(f"Member must have {kind} less than or equal to {render(meta['max'])}")
    if "min" in meta:
        kind = "length" if shape.type_name == "string" else "value"
        found.append(f"Member must have {kind} greater than or equal to {render(meta['min'])}")
    if "pattern" in meta:
        found.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
    if meta.get("enum"):
        found.append(f"Member must satisfy enum value set: [{', '.join(meta['enum'])}]")
    return found


def _scalar(shape: Shape) -> bool:
    return shape.type_name not in ("structure", "list", "map")


def violations(shape: Shape, value: Any, path: str = "") -> list[Violation]:
    """Every constraint `value` breaks, walking `shape` (members in the model's order)."""
    shown = None if shape.metadata.get("sensitive") else render(value)
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, value, path) if isinstance(value, dict) else []
    if kind == "list" and isinstance(value, list):
        found = [Violation(path, shown, c) for c in _length(shape.metadata, len(value))]
        return found + _members(shape, value, path, shown)
    if kind == "map" and isinstance(value, dict):
        found = [Violation(path, shown, c) for c in _length(shape.metadata, len(value))]
        return found + _entries(shape, value, path, shown)
    return [Violation(path, shown, c) for c in scalar_constraints(shape, value)]


def _structure(shape: Shape, value: dict[str, Any], path: str) -> list[Violation]:
    found = []
    for name, member in shape.members.items():
        item = value.get(name)
        if item is None:
            item = value.get(str(member.serialization.get("name", name)))
        if item is not None:
            where = f"{path}.{_name(name)}" if path else _name(name)
            found += violations(member, item, where)
    return found


def _members(shape: Shape, value: list[Any], path: str, shown: str | None) -> list[Violation]:
    member = shape.member
    if _scalar(member):
        if any(True for item in value for _ in scalar_constraints(member, item)):
            listed = ", ".join(_all_scalar_constraints(member))
            return [Violation(path, shown, f"Member must satisfy constraint: [{listed}]")]
        return []
    found = []
    for index, item in enumerate(value, 1):
        found += violations(member, item, f"{path}.{index}.member")
    return found


def _entries(shape: Shape, value: dict[str, Any], path: str,
             shown: str | None) -> list[Violation]:
    found = []
    if any(True for key in value for _ in scalar_constraints(shape.key, key)):
        listed = ", ".join(_all_scalar_constraints(shape.key))
        found.append(Violation(path, shown, f"Map keys must satisfy constraint: [{listed}]"))
    if _scalar(shape.value):
        if any(True for item in value.values() for _ in scalar_constraints(shape.value, item)):
            listed = ", ".join(_all_scalar_constraints(shape.value))
            found.append(Violation(path, shown,
                                   f"Map value must satisfy constraint: [{listed}]"))
        return found
    for key, item in value.items():
        found += violations(shape.value, item, f"{path}.{key}")
    return found


def message(found: list[Violation]) -> str:
    """AWS's message for the violations of one request."""
    count = len(found)
    errors = "error" if count == 1 else "errors"
    return f"{count} validation {errors} detected: " + "; ".join(v.text() for v in found)


# --- the rule --------------------------------------------------------------------------------


def code_for(request: AwsRequest) -> str:
    """The error code the request's service gives for a constraint violation."""
    if request.service in CODES:
        return CODES[request.service]
    if request.protocol == "ec2":
        return EC2_CODE
    return QUERY_CODE if request.protocol == "query" else JSON_CODE


def refusal_for(request: AwsRequest) -> Refusal | None:
    """The service's answer to a request whose input breaks its model; None if it keeps it."""
    from tests.platform.fidelity import Refusal  # noqa: PLC0415 (see the import above)

    if request.service in UNCHECKED_SERVICES:
        return None
    decoded = parameters(request)
    if decoded is None:
        return None
    model, value = decoded
    found = violations(model.input_shape, value)
    if not found:
        return None
    # Paths only: a value may be anything the caller sent.
    log.info("refused %s %s at %s", request.service, model.name,
             ", ".join(sorted({v.path for v in found})))
    if request.protocol == "ec2":  # EC2 names one parameter, in its own words
        first = found[0]
        shown = "" if first.value is None else first.value
        text = f"Value ({shown}) for parameter {first.path} is invalid. {first.constraint}"
        return Refusal(400, EC2_CODE, text, protocol="ec2")
    return Refusal(400, code_for(request), message(found), protocol=request.protocol)


def refuse(request: AwsRequest) -> Refusal | None:
    """Refuse a request whose parameters break its operation's model constraints."""
    return refusal_for(request)
