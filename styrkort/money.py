"""Money as whole öre (int) or Decimal kronor; never float.

Amounts are formatted the Swedish way: 14 446 372 kr.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

NBSP = "\xa0"


def parse_kronor(value: str | int | Decimal) -> Decimal:
    """Parse '14 446 372', '14446372,50' or 14446372 into Decimal kronor (two decimals at most)."""
    if isinstance(value, float):
        raise TypeError("money is never a float")
    text = str(value).strip().replace(NBSP, "").replace(" ", "").replace(",", ".")
    text = text.removesuffix("kr").removesuffix("SEK").strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount of money")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"{value!r} has more than two decimals (öre)")
    return amount


def whole_kronor(value: str | int | Decimal) -> int:
    """An amount that must be whole kronor, as int; raises ValueError otherwise."""
    amount = parse_kronor(value)
    if amount != amount.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number of kronor")
    return int(amount)


def to_ore(kronor: Decimal | int) -> int:
    return int((Decimal(kronor) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_ore(ore: int) -> Decimal:
    return (Decimal(ore) / 100).quantize(Decimal("0.01"))


def format_kronor(amount: Decimal | int, decimals: int = 0) -> str:
    """14446372 -> '14 446 372 kr' (non-breaking spaces)."""
    q = Decimal(amount).quantize(Decimal(1) if decimals == 0 else Decimal(10) ** -decimals)
    sign = "−" if q < 0 else ""
    whole, _, frac = f"{abs(q):f}".partition(".")
    groups: list[str] = []
    while whole:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    text = NBSP.join(groups) + ("," + frac if frac else "")
    return f"{sign}{text}{NBSP}kr"
