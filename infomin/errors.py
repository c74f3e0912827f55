"""Errors that reach users, and the small validators that raise them.

Every user-facing error names the field, the bad value and, where there is a
finite set, the valid choices (docs/architecture.md, "Errors": validate at
construction, raise, never assert).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any


class InfominError(Exception):
    """Base class of every error infomin raises on purpose.

    ``exit_code`` is what the command line exits with: 2 for a problem the user can fix
    (bad input, an unreachable or read-only store named by the user), 1 for a failure that
    is not the user's (subclasses set it).
    """

    exit_code = 2


_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<secret>[^@/\s]*)@")
_QUERY_SECRET = re.compile(r"(?i)(?P<key>[?&;](?:password|passwd|pwd|token|secret|api_key|access_key)=)[^&;\s'\"]*")


def redact(text: str) -> str:
    """Hide every credential in a URL, or in a message holding URLs: ``user:***@host``, ``password=***``.

    >>> redact("postgresql+psycopg://me:s3cret@db:5432/optuna?sslmode=require&password=x")
    'postgresql+psycopg://me:***@db:5432/optuna?sslmode=require&password=***'
    >>> redact("http://mlflow:5000 and sqlite:////tmp/a.db")
    'http://mlflow:5000 and sqlite:////tmp/a.db'
    """
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}***", text)


def has_secret(text: str) -> bool:
    """Whether :func:`redact` would change ``text``."""
    return redact(text) != str(text)


class SpecError(InfominError, ValueError):
    """A bad field in a spec, config or argument.

    >>> raise SpecError("kind", "rgb2lab", choices=["lab", "yuv"])
    Traceback (most recent call last):
    ...
    infomin.errors.SpecError: kind: got 'rgb2lab'; valid choices: 'lab', 'yuv'
    """

    def __init__(self, field: str, value: Any, message: str | None = None,
                 choices: Iterable[Any] | None = None):
        self.field = field
        self.value = value
        self.message = message
        self.choices = list(choices) if choices is not None else None
        text = f"{field}: got {value!r}"
        if message:
            text += f"; {message}"
        if self.choices is not None:
            text += "; valid choices: " + ", ".join(repr(c) for c in self.choices)
        super().__init__(text)


def check_choice(field: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = list(choices)
    if value not in choices:
        raise SpecError(field, value, choices=choices)
    return value


def check_range(field: str, value: Any, low: float | None = None, high: float | None = None,
                *, low_open: bool = False, high_open: bool = False) -> float:
    """Check ``low <= value <= high`` (bounds may be open or ``None``) and finiteness."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(field, value, "expected a number")
    if not math.isfinite(value):
        raise SpecError(field, value, "expected a finite number")
    lo_ok = low is None or (value > low if low_open else value >= low)
    hi_ok = high is None or (value < high if high_open else value <= high)
    if not (lo_ok and hi_ok):
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise SpecError(field, value, f"expected a value in {lb}{lo}, {hi}{hb}")
    return value


def check_int(field: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, value, "expected an integer")
    check_range(field, value, low, high)
    return value


def check_interval(field: str, value: Any, low: float | None = None,
                   high: float | None = None) -> tuple[float, float]:
    """A ``[a, b]`` pair with ``low <= a <= b <= high``."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise SpecError(field, value, "expected a pair [low, high]")
    a, b = (check_range(f"{field}[{i}]", v, low, high) for i, v in enumerate(value))
    if a > b:
        raise SpecError(field, value, "expected low <= high")
    return float(a), float(b)
