"""What an operator may type: tenant names, and free text (reasons, labels, filters).

A tenant name is normalised (NFKC, trimmed) and refused when it holds a control (Cc),
invisible or format (Cf) character, a line or paragraph separator, a lone surrogate, or
an invisible filler (Hangul fillers, variation selectors, ...), when it is empty after
trimming, or longer than `MAX_NAME_LENGTH`. Two names are the same tenant when their
`name_key`s are equal: NFKC, case folded, runs of spaces made one ("Alpha" is "alpha").

Free text refuses every C0 and C1 control character (NUL first: PostgreSQL text cannot
hold it) and lone surrogates. Text that may span lines (the reason of a top-up or an
adjustment) may hold tab and newline; one-line text (labels, names to filter by) may not.

Each check raises `TextError` (a ValueError) naming what is wrong and where. Pure.
"""

import unicodedata

MAX_NAME_LENGTH = 200
MAX_TEXT_LENGTH = 200
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Invisible characters that are not in category Cf (Unicode's Default_Ignorable_Code_Point
# letters and marks, and the blank braille pattern), as inclusive ranges of code points.
_FILLERS = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x2800, 0x2800),
            (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0100, 0xE01EF))
_FILLER_POINTS = frozenset(cp for first, last in _FILLERS for cp in range(first, last + 1))
# Categories Cf, Zl and Zp in Unicode 14 (Python 3.11), for the JSON Schema of the admin API;
# tests/unit/test_operator_text.py checks them against unicodedata, code point by code point.
_FORMAT = ((0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),
           (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x2028, 0x202E),
           (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
           (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
           (0xE0020, 0xE007F))
_CONTROL = ((0x00, 0x1F), (0x7F, 0x9F))  # C0, DEL, C1 (category Cc)
_LINES_CONTROL = ((0x00, 0x08), (0x0B, 0x1F), (0x7F, 0x9F))  # tab and newline allowed


def _char_class(*ranges: tuple[int, int]) -> str:
    """The inside of a regular expression's [...]: escapes in the BMP (so the schema is
    printable and holds no lone surrogate), the characters themselves above it."""
    def one(cp: int) -> str:
        return f"\\u{cp:04x}" if cp <= 0xFFFF else chr(cp)
    return "".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in ranges)


_NOT_IN_NAME = _char_class(*_CONTROL, *_FORMAT, *_FILLERS)
# JSON Schema patterns saying the same as the checks below, but for lone surrogates, which
# the checks refuse too: JSON cannot carry them to the admin API (orjson refuses them), and
# a regular expression of a schema validator cannot name them (Rust's cannot).
NAME_PATTERN = f"^[^{_NOT_IN_NAME}]*[^\\s{_NOT_IN_NAME}][^{_NOT_IN_NAME}]*$"
LINE_PATTERN = f"^[^{_char_class(*_CONTROL)}]*$"
LINES_PATTERN = (f"^[^{_char_class(*_LINES_CONTROL)}]*[^\\s{_char_class(*_CONTROL)}]"
                 f"[^{_char_class(*_LINES_CONTROL)}]*$")


class TextError(ValueError):
    """Text an operator typed that is refused; the message says why."""


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}{' ' + name if name else ''}"


def _refused_in_name(char: str) -> bool:
    return unicodedata.category(char) in _REFUSED_CATEGORIES or ord(char) in _FILLER_POINTS


def tenant_name(text: str) -> str:
    """The name `text` stands for (NFKC, trimmed), or TextError."""
    if not isinstance(text, str):
        raise TextError("a tenant name is text")
    if len(text) > 4 * MAX_NAME_LENGTH:  # before normalising, which may lengthen it
        raise TextError(f"a tenant name has at most {MAX_NAME_LENGTH} characters")
    for position, char in enumerate(text):
        if _refused_in_name(char):
            raise TextError(f"a tenant name may not hold control or invisible characters ({_describe(char)} at "
                            f"position {position})")
    name = unicodedata.normalize("NFKC", text).strip()
    if not name:
        raise TextError("a tenant name may not be empty or only spaces")
    if len(name) > MAX_NAME_LENGTH:
        raise TextError(f"a tenant name has at most {MAX_NAME_LENGTH} characters")
    bad = next((c for c in name if _refused_in_name(c)), None)
    if bad is not None:  # made by normalising
        raise TextError(f"a tenant name may not hold control or invisible characters ({_describe(bad)})")
    return name


def name_key(name: str) -> str:
    """What two names of the same tenant share: NFKC, case folded, spaces collapsed.
    (Characters a name may not hold are dropped, so an old name holding them still keys
    with its look-alikes.)"""
    visible = "".join(c for c in unicodedata.normalize("NFKC", name) if not _refused_in_name(c))
    folded = unicodedata.normalize("NFKC", visible.casefold())
    return " ".join(folded.split())


def _check(text: str, what: str, allowed: str, max_length: int) -> str:
    if not isinstance(text, str):
        raise TextError(f"{what} is text")
    if len(text) > max_length:
        raise TextError(f"{what} has at most {max_length} characters")
    for position, char in enumerate(text):
        if char not in allowed and (unicodedata.category(char) in ("Cc", "Cs")):
            raise TextError(f"{what} may not hold control characters ({_describe(char)} at position {position})")
    return text


def line_text(text: str, what: str = "the text", max_length: int = MAX_TEXT_LENGTH) -> str:
    """One line of free text (a label, a name to filter by): `text` itself, or TextError."""
    return _check(text, what, "", max_length)


def lines_text(text: str, what: str = "the text", max_length: int = MAX_TEXT_LENGTH) -> str:
    """Free text that may span lines (a reason): not blank, tab and newline allowed."""
    _check(text, what, "\t\n", max_length)
    if not text.strip():
        raise TextError(f"{what} may not be empty or only spaces")
    return text
