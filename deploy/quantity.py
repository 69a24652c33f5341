"""Kubernetes resource quantities ("500m", "8Gi", 2) as numbers, the way the scheduler and KubeRay read them."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
# The apiserver's quantity grammar: a signed decimal, then a binary/decimal suffix or a decimal exponent.
QUANTITY_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$"
_QUANTITY = re.compile(QUANTITY_PATTERN)


def parse_quantity(value: str | int | float) -> Decimal:
    """The value of a quantity; raises ValueError for what the apiserver would reject."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    text = str(value).strip()
    if not _QUANTITY.match(text):
        raise ValueError(f"not a Kubernetes quantity: {value!r} (e.g. 500m, 2, 8Gi)")
    number = re.match(r"^[+-]?(\d+\.?\d*|\.\d+)", text)
    assert number is not None
    suffix = text[number.end():]
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(text)
        return Decimal(number.group(0)) * _SUFFIX[suffix]
    except (InvalidOperation, KeyError):
        raise ValueError(f"not a Kubernetes quantity: {value!r}") from None


def ceil_units(value: str | int | float) -> int:
    """Rounded up to a whole unit, as KubeRay turns a CPU limit into `ray start --num-cpus` (Quantity.Value())."""
    return int(math.ceil(parse_quantity(value)))
