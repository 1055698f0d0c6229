"""Swedish identifiers: Luhn check, organisation numbers, HSA-ids, personal identity numbers.

Organisation numbers (and so the HSA-ids built on them) also pass the Luhn check; what
separates a personal identity or co-ordination number is that its first six digits form a real
date (day + 60 for a samordningsnummer) and its birth number is not 000.
"""

from __future__ import annotations

import re
from datetime import date

HSA_ID_RE = re.compile(r"^SE(?:16)?(\d{10})-[A-Za-z0-9]{1,31}$")
_ORG_NR_RE = re.compile(r"^(\d{6})-?(\d{4})$")
# 10 or 12 digits with an optional - or + before the last four; used to find candidates.
PERSONAL_NUMBER_RE = re.compile(r"(?<!\d)(\d{2})?(\d{2})(\d{2})(\d{2})[-+]?(\d{3})(\d)(?!\d)")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def normalise_org_nr(value: str) -> str:
    """Return the ten digits of a valid organisation number or raise ValueError."""
    m = _ORG_NR_RE.match(value.strip())
    if not m:
        raise ValueError("an organisation number has ten digits, e.g. 232100-0164")
    digits = m.group(1) + m.group(2)
    if int(digits[2:4]) < 20:
        raise ValueError("the third and fourth digits of an organisation number are at least 20")
    if not luhn_ok(digits):
        raise ValueError("the check digit (Luhn) is wrong")
    return digits


def format_org_nr(digits: str) -> str:
    return f"{digits[:6]}-{digits[6:]}"


def validate_hsa_id(value: str) -> str:
    """Return the HSA-id unchanged if valid or raise ValueError saying why."""
    m = HSA_ID_RE.match(value.strip())
    if not m:
        raise ValueError(
            "an HSA-id is SE, optionally 16, a ten-digit organisation number, a hyphen and "
            "1–31 letters or digits, e.g. SE2321000016-12ZX"
        )
    if not luhn_ok(m.group(1)):
        raise ValueError("the organisation number inside the HSA-id fails its check digit (Luhn)")
    return value.strip()


def _real_birth_date(century: str | None, yy: str, mm: str, dd: str) -> bool:
    month, day = int(mm), int(dd)
    if day > 60:
        day -= 60  # samordningsnummer
    # Without the century any of the last two centuries is possible.
    years = [int(century + yy)] if century is not None else [1900 + int(yy), 2000 + int(yy)]
    for year in years:
        try:
            date(year, month, day)
        except ValueError:
            continue
        return True
    return False


def is_personal_number(value: str) -> bool:
    """True if the whole value is a valid personnummer or samordningsnummer (10 or 12 digits)."""
    text = value.strip()
    m = PERSONAL_NUMBER_RE.fullmatch(text)
    return m is not None and _match_is_personal_number(m)


def find_personal_number(value: str) -> str | None:
    """Return the first personal or co-ordination number inside a free text, else None."""
    for m in PERSONAL_NUMBER_RE.finditer(value):
        if _match_is_personal_number(m):
            return m.group(0)
    return None


def _match_is_personal_number(m: re.Match[str]) -> bool:
    century, yy, mm, dd, birth, check = m.groups()
    if century is not None and century not in {"18", "19", "20"}:
        return False
    if birth == "000":
        return False
    if not _real_birth_date(century, yy, mm, dd):
        return False
    return luhn_ok(yy + mm + dd + birth + check)


def mask(value: str) -> str:
    """Mask a refused identifier so an error report can point at it without repeating it."""
    text = str(value)
    if len(text) <= 4:
        return "*" * len(text)
    return text[:2] + "*" * (len(text) - 4) + text[-2:]
