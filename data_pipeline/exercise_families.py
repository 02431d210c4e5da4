"""Parametrised families of embedded exercises (see embedded_data.py for the record format): the
part of the embedded CodeExercises set in DESIGN.md's data flow that varies one idea over many
parameters — number bases, integer sequences, digit statistics, character filters, unit
conversions, geometry formulas, list reductions and number properties.

Every exercise is a real function with its own docstring, solution and asserts. Expected values in
the asserts never come from running the solution: they are known values written here (sequence
terms, conversion anchors, geometry results) or come from an *independent* oracle evaluated when
the data set is built (numpy.base_repr for bases, regular expressions for character filters,
Python built-ins for list reductions, brute force for number properties).
"""

from __future__ import annotations

import math
import re
import textwrap
from typing import Callable, Iterator

import numpy as np

from data_pipeline import embedded_data

_ORIGIN = "exercise_families.py"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_BASES = [2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16]
_BASE_SAMPLES = [0, 1, 7, 100, 255, 1000, 65535]


def _exercise(name: str, signature: str, doc: str, body: str, tests: list[str],
              family: str) -> dict:
    doc_lines = textwrap.wrap(doc, 92)
    docstring = "\n    ".join(doc_lines)
    prompt = f'def {name}{signature}:\n    """{docstring}"""\n'
    return embedded_data.exercise_record(name, prompt, textwrap.indent(body.strip("\n"), "    ")
                                         + "\n", tests, family, _ORIGIN)


def _ordinal(b: int) -> str:
    return {2: "binary", 8: "octal", 16: "hexadecimal"}.get(b, f"base-{b}")


def base_exercises() -> Iterator[dict]:
    for b in _BASES:
        name = f"to_base_{b}"
        body = f"""
digits = "{_DIGITS[:b]}"
if n == 0:
    return "0"
out = []
while n > 0:
    n, remainder = divmod(n, {b})
    out.append(digits[remainder])
return "".join(reversed(out))
"""
        tests = [f"assert {name}({n}) == {np.base_repr(n, b).lower()!r}" for n in _BASE_SAMPLES]
        yield _exercise(name, "(n: int) -> str",
                        f"Return the {_ordinal(b)} representation of the non-negative integer n, "
                        f"using lower-case letters for digits above 9 and no prefix.",
                        body, tests, "to_base")
        name = f"from_base_{b}"
        body = f"""
value = 0
for char in text.lower():
    value = value * {b} + "{_DIGITS[:b]}".index(char)
return value
"""
        tests = [f"assert {name}({np.base_repr(n, b)!r}) == {n}" for n in _BASE_SAMPLES]
        yield _exercise(name, "(text: str) -> int",
                        f"Parse a {_ordinal(b)} numeral (digits above 9 are letters, either case) "
                        f"into an integer without calling int() with a base.",
                        body, tests, "from_base")


# (name, description, solution body computing term n, first terms from n = 0)
_SEQUENCES = [
    ("fibonacci", "the Fibonacci numbers F(0) = 0, F(1) = 1, F(n) = F(n-1) + F(n-2)",
     "a, b = 0, 1\nfor _ in range(n):\n    a, b = b, a + b\nreturn a",
     [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55]),
    ("lucas", "the Lucas numbers L(0) = 2, L(1) = 1, L(n) = L(n-1) + L(n-2)",
     "a, b = 2, 1\nfor _ in range(n):\n    a, b = b, a + b\nreturn a",
     [2, 1, 3, 4, 7, 11, 18, 29, 47, 76]),
    ("tribonacci", "the tribonacci numbers T(0) = T(1) = 0, T(2) = 1, each later term the sum of "
     "the three before it",
     "a, b, c = 0, 0, 1\nfor _ in range(n):\n    a, b, c = b, c, a + b + c\nreturn a",
     [0, 0, 1, 1, 2, 4, 7, 13, 24, 44, 81]),
    ("pell", "the Pell numbers P(0) = 0, P(1) = 1, P(n) = 2 P(n-1) + P(n-2)",
     "a, b = 0, 1\nfor _ in range(n):\n    a, b = b, 2 * b + a\nreturn a",
     [0, 1, 2, 5, 12, 29, 70, 169, 408, 985]),
    ("jacobsthal", "the Jacobsthal numbers J(0) = 0, J(1) = 1, J(n) = J(n-1) + 2 J(n-2)",
     "a, b = 0, 1\nfor _ in range(n):\n    a, b = b, b + 2 * a\nreturn a",
     [0, 1, 1, 3, 5, 11, 21, 43, 85, 171]),
    ("padovan", "the Padovan numbers P(0) = P(1) = P(2) = 1, P(n) = P(n-2) + P(n-3)",
     "a, b, c = 1, 1, 1\nfor _ in range(n):\n    a, b, c = b, c, a + b\nreturn a",
     [1, 1, 1, 2, 2, 3, 4, 5, 7, 9, 12, 16]),
    ("triangular", "the triangular numbers 0, 1, 3, 6, ...: the sum 1 + 2 + ... + n",
     "total = 0\nfor k in range(1, n + 1):\n    total += k\nreturn total",
     [0, 1, 3, 6, 10, 15, 21, 28, 36, 45]),
    ("pentagonal", "the pentagonal numbers n (3n - 1) / 2",
     "return n * (3 * n - 1) // 2", [0, 1, 5, 12, 22, 35, 51, 70, 92, 117]),
    ("hexagonal", "the hexagonal numbers n (2n - 1)",
     "return n * (2 * n - 1)", [0, 1, 6, 15, 28, 45, 66, 91, 120, 153]),
    ("square_pyramidal", "the square pyramidal numbers 0^2 + 1^2 + ... + n^2",
     "return sum(k * k for k in range(n + 1))", [0, 1, 5, 14, 30, 55, 91, 140, 204, 285]),
    ("tetrahedral", "the tetrahedral numbers: the sum of the first n triangular numbers",
     "return n * (n + 1) * (n + 2) // 6", [0, 1, 4, 10, 20, 35, 56, 84, 120, 165]),
    ("catalan", "the Catalan numbers C(0) = 1, C(n+1) = C(n) * 2 (2n + 1) / (n + 2)",
     "c = 1\nfor k in range(n):\n    c = c * 2 * (2 * k + 1) // (k + 2)\nreturn c",
     [1, 1, 2, 5, 14, 42, 132, 429, 1430, 4862]),
    ("motzkin", "the Motzkin numbers M(0) = M(1) = 1, (n + 3) M(n+1) = (2n + 3) M(n) + 3n M(n-1)",
     "if n < 2:\n    return 1\nprev, cur = 1, 1\nfor k in range(1, n):\n"
     "    prev, cur = cur, ((2 * k + 3) * cur + 3 * k * prev) // (k + 3)\nreturn cur",
     [1, 1, 2, 4, 9, 21, 51, 127, 323, 835]),
]


def sequence_exercises() -> Iterator[dict]:
    for name, description, body, terms in _SEQUENCES:
        fn = f"nth_{name}"
        tests = [f"assert [{fn}(n) for n in range({len(terms)})] == {terms}"]
        yield _exercise(fn, "(n: int) -> int", f"Return term n (counting from 0) of {description}.",
                        body, tests, "integer_sequence")


# (name, doc, solution body over n >= 0, independent oracle over the decimal string)
_DIGIT_STATS: list[tuple[str, str, str, Callable[[str], int]]] = [
    ("digit_sum", "the sum of the decimal digits",
     "total = 0\nwhile n:\n    n, d = divmod(n, 10)\n    total += d\nreturn total",
     lambda s: sum(map(int, s))),
    ("digit_product", "the product of the decimal digits",
     "product = 1\nwhile True:\n    n, d = divmod(n, 10)\n    product *= d\n    if n == 0:\n"
     "        return product", lambda s: math.prod(map(int, s))),
    ("digit_count", "how many decimal digits it has (0 has one digit)",
     "count = 1\nwhile n >= 10:\n    n //= 10\n    count += 1\nreturn count", len),
    ("even_digit_count", "how many of its decimal digits are even",
     "count = 0\nwhile True:\n    n, d = divmod(n, 10)\n    count += d % 2 == 0\n    if n == 0:\n"
     "        return count", lambda s: sum(c in "02468" for c in s)),
    ("odd_digit_count", "how many of its decimal digits are odd",
     "count = 0\nwhile n:\n    n, d = divmod(n, 10)\n    count += d % 2\nreturn count",
     lambda s: sum(c in "13579" for c in s)),
    ("max_digit", "its largest decimal digit",
     "best = 0\nwhile n:\n    n, d = divmod(n, 10)\n    best = max(best, d)\nreturn best",
     lambda s: int(max(s))),
    ("min_digit", "its smallest decimal digit",
     "best = 9\nwhile True:\n    n, d = divmod(n, 10)\n    best = min(best, d)\n    if n == 0:\n"
     "        return best", lambda s: int(min(s))),
    ("zero_digit_count", "how many of its decimal digits are 0",
     "count = 0\nwhile True:\n    n, d = divmod(n, 10)\n    count += d == 0\n    if n == 0:\n"
     "        return count", lambda s: s.count("0")),
    ("squared_digit_sum", "the sum of the squares of its decimal digits",
     "total = 0\nwhile n:\n    n, d = divmod(n, 10)\n    total += d * d\nreturn total",
     lambda s: sum(int(c) ** 2 for c in s)),
    ("alternating_digit_sum", "the alternating sum of its decimal digits starting with + at the "
     "last (units) digit: 1234 gives 4 - 3 + 2 - 1",
     "total, sign = 0, 1\nwhile n:\n    n, d = divmod(n, 10)\n    total += sign * d\n"
     "    sign = -sign\nreturn total",
     lambda s: sum(int(c) * (-1) ** i for i, c in enumerate(reversed(s)))),
]
_DIGIT_SAMPLES = [0, 7, 10, 1234, 90210, 5050505, 987654321]


def digit_exercises() -> Iterator[dict]:
    for name, doc, body, oracle in _DIGIT_STATS:
        tests = [f"assert {name}({n}) == {oracle(str(n))}" for n in _DIGIT_SAMPLES]
        yield _exercise(name, "(n: int) -> int",
                        f"For a non-negative integer n, return {doc}, using arithmetic rather "
                        f"than converting n to a string.", body, tests, "digit_statistic")


# (name, what is kept, condition on a character c, regular expression removing the rest)
_CHAR_FILTERS = [
    ("keep_digits", "only the ASCII digits", '"0" <= c <= "9"', r"[^0-9]"),
    ("keep_ascii_letters", "only the ASCII letters", '"a" <= c.lower() <= "z"', r"[^A-Za-z]"),
    ("keep_uppercase", "only the upper-case ASCII letters", '"A" <= c <= "Z"', r"[^A-Z]"),
    ("keep_lowercase", "only the lower-case ASCII letters", '"a" <= c <= "z"', r"[^a-z]"),
    ("remove_whitespace", "everything except spaces, tabs and newlines", 'c not in " \\t\\n"',
     r"[ \t\n]"),
    ("remove_vowels", "everything except the vowels a, e, i, o, u in either case",
     'c.lower() not in "aeiou"', r"[aeiouAEIOU]"),
    ("remove_punctuation", "everything except the characters .,;:!?'\"-",
     'c not in ".,;:!?\'\\"-"', r"[.,;:!?'\"-]"),
    ("keep_alphanumeric_ascii", "only ASCII letters and digits",
     '"a" <= c.lower() <= "z" or "0" <= c <= "9"', r"[^A-Za-z0-9]"),
]
_TEXT_SAMPLES = ["Hello, World! 123", "Python 3.11 -- 'fast'; really?", "  MiXeD\tcAsE\ntext ", ""]


def char_filter_exercises() -> Iterator[dict]:
    for name, kept, condition, removed in _CHAR_FILTERS:
        body = f'return "".join(c for c in text if {condition})'
        tests = [f"assert {name}({s!r}) == {re.sub(removed, '', s)!r}" for s in _TEXT_SAMPLES]
        yield _exercise(name, "(text: str) -> str",
                        f"Return the characters of text, in order, keeping {kept}.",
                        body, tests, "character_filter")


# (name, doc, factor, anchors (input, known exact output)); tolerance 1e-9 relative.
_UNITS = [
    ("inches_to_cm", "inches to centimetres (1 in = 2.54 cm exactly)", 2.54,
     [(1, 2.54), (12, 30.48), (0, 0.0)]),
    ("cm_to_inches", "centimetres to inches (1 in = 2.54 cm exactly)", 1 / 2.54,
     [(2.54, 1.0), (30.48, 12.0)]),
    ("miles_to_km", "statute miles to kilometres (1 mile = 1.609344 km exactly)", 1.609344,
     [(1, 1.609344), (100, 160.9344)]),
    ("km_to_miles", "kilometres to statute miles (1 mile = 1.609344 km exactly)", 1 / 1.609344,
     [(1.609344, 1.0), (160.9344, 100.0)]),
    ("pounds_to_kg", "avoirdupois pounds to kilograms (1 lb = 0.45359237 kg exactly)",
     0.45359237, [(1, 0.45359237), (2.2, 0.997903214)]),
    ("kg_to_pounds", "kilograms to avoirdupois pounds (1 lb = 0.45359237 kg exactly)",
     1 / 0.45359237, [(0.45359237, 1.0), (45.359237, 100.0)]),
    ("feet_to_meters", "international feet to metres (1 ft = 0.3048 m exactly)", 0.3048,
     [(1, 0.3048), (5280, 1609.344)]),
    ("gallons_to_liters", "US gallons to litres (1 gal = 3.785411784 L exactly)", 3.785411784,
     [(1, 3.785411784), (10, 37.85411784)]),
    ("hours_to_seconds", "hours to seconds", 3600, [(1, 3600), (1.5, 5400), (24, 86400)]),
    ("knots_to_kmh", "knots to kilometres per hour (1 knot = 1.852 km/h exactly)", 1.852,
     [(1, 1.852), (10, 18.52)]),
]


def unit_exercises() -> Iterator[dict]:
    for name, doc, factor, anchors in _UNITS:
        tests = [f"assert abs({name}({x}) - {y}) <= 1e-9 * max(1.0, abs({y}))" for x, y in anchors]
        yield _exercise(name, "(value: float) -> float", f"Convert value from {doc}.",
                        f"return value * {factor!r}", tests, "unit_conversion")


# (name, signature, doc, body, anchors (call arguments, known value))
_GEOMETRY = [
    ("circle_area", "(radius: float) -> float", "the area of a circle with the given radius",
     "import math\nreturn math.pi * radius ** 2", [("1", "3.141592653589793"), ("2", "12.566370614359172")]),
    ("circle_circumference", "(radius: float) -> float", "the circumference of a circle",
     "import math\nreturn 2 * math.pi * radius", [("1", "6.283185307179586"), ("0.5", "3.141592653589793")]),
    ("rectangle_perimeter", "(width: float, height: float) -> float",
     "the perimeter of a width x height rectangle", "return 2 * (width + height)",
     [("3, 4", "14"), ("0.5, 0.5", "2")]),
    ("triangle_area_heron", "(a: float, b: float, c: float) -> float",
     "the area of a triangle with side lengths a, b and c, by Heron's formula",
     "import math\ns = (a + b + c) / 2\nreturn math.sqrt(s * (s - a) * (s - b) * (s - c))",
     [("3, 4, 5", "6"), ("5, 5, 6", "12"), ("1, 1, 2", "0")]),
    ("trapezoid_area", "(a: float, b: float, height: float) -> float",
     "the area of a trapezoid with parallel sides a and b and the given height",
     "return (a + b) * height / 2", [("3, 5, 2", "8"), ("1, 1, 1", "1")]),
    ("sphere_volume", "(radius: float) -> float", "the volume of a sphere",
     "import math\nreturn 4 / 3 * math.pi * radius ** 3",
     [("1", "4.1887902047863905"), ("3", "113.09733552923255")]),
    ("cylinder_volume", "(radius: float, height: float) -> float",
     "the volume of a cylinder", "import math\nreturn math.pi * radius ** 2 * height",
     [("1, 1", "3.141592653589793"), ("2, 3", "37.69911184307752")]),
    ("cone_volume", "(radius: float, height: float) -> float", "the volume of a right cone",
     "import math\nreturn math.pi * radius ** 2 * height / 3",
     [("1, 3", "3.141592653589793"), ("3, 1", "9.42477796076938")]),
    ("cube_surface_area", "(edge: float) -> float", "the total surface area of a cube",
     "return 6 * edge ** 2", [("1", "6"), ("2.5", "37.5")]),
    ("distance_2d", "(x1: float, y1: float, x2: float, y2: float) -> float",
     "the Euclidean distance between points (x1, y1) and (x2, y2)",
     "return ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5",
     [("0, 0, 3, 4", "5"), ("1, 1, 1, 1", "0"), ("-1, -1, 2, 3", "5")]),
]


def geometry_exercises() -> Iterator[dict]:
    for name, signature, doc, body, anchors in _GEOMETRY:
        tests = [f"assert abs({name}({args}) - {value}) < 1e-9" for args, value in anchors]
        yield _exercise(name, signature, f"Return {doc}.", body, tests, "geometry")


# (name, doc, loop solution, independent oracle built from Python built-ins)
_REDUCTIONS: list[tuple[str, str, str, Callable[[list], object]]] = [
    ("total", "the sum of the numbers (0 for an empty list)",
     "result = 0\nfor x in numbers:\n    result += x\nreturn result", sum),
    ("product", "the product of the numbers (1 for an empty list)",
     "result = 1\nfor x in numbers:\n    result *= x\nreturn result", math.prod),
    ("largest", "the largest number (None for an empty list)",
     "best = None\nfor x in numbers:\n    if best is None or x > best:\n        best = x\nreturn best",
     lambda xs: max(xs, default=None)),
    ("smallest", "the smallest number (None for an empty list)",
     "best = None\nfor x in numbers:\n    if best is None or x < best:\n        best = x\nreturn best",
     lambda xs: min(xs, default=None)),
    ("spread", "the largest minus the smallest number (0 for an empty list)",
     "if not numbers:\n    return 0\nlow = high = numbers[0]\nfor x in numbers:\n"
     "    low, high = min(low, x), max(high, x)\nreturn high - low",
     lambda xs: max(xs) - min(xs) if xs else 0),
    ("count_positive", "how many numbers are greater than zero",
     "count = 0\nfor x in numbers:\n    if x > 0:\n        count += 1\nreturn count",
     lambda xs: len([x for x in xs if x > 0])),
    ("sum_of_squares", "the sum of the squares of the numbers",
     "result = 0\nfor x in numbers:\n    result += x * x\nreturn result",
     lambda xs: sum(map(lambda x: x ** 2, xs))),
    ("sum_of_evens", "the sum of the even numbers",
     "result = 0\nfor x in numbers:\n    if x % 2 == 0:\n        result += x\nreturn result",
     lambda xs: sum(filter(lambda x: not x & 1, xs))),
    ("alternating_total", "numbers[0] - numbers[1] + numbers[2] - ...",
     "result, sign = 0, 1\nfor x in numbers:\n    result += sign * x\n    sign = -sign\nreturn result",
     lambda xs: sum(xs[0::2]) - sum(xs[1::2])),
    ("count_sign_changes", "how many neighbouring pairs have opposite signs (zeros never count)",
     "count = 0\nfor a, b in zip(numbers, numbers[1:]):\n    if a * b < 0:\n        count += 1\n"
     "return count",
     lambda xs: len([i for i in range(len(xs) - 1) if (xs[i] < 0 < xs[i + 1]) or (xs[i + 1] < 0 < xs[i])])),
]
_LIST_SAMPLES = [[], [5], [3, -1, 4, -1, 5, -9, 2, 6], [0, 0, 7, -7], [10, 20, 30]]


def reduction_exercises() -> Iterator[dict]:
    for name, doc, body, oracle in _REDUCTIONS:
        tests = [f"assert {name}({xs}) == {oracle(xs)!r}" for xs in _LIST_SAMPLES]
        yield _exercise(name, "(numbers: list)", f"Return {doc}, using a loop rather than the "
                        f"built-in reduction functions.", body, tests, "list_reduction")


def _divisor_sum(n: int) -> int:
    return sum(d for d in range(1, n) if n % d == 0)


# (name, doc, solution, brute-force oracle)
_PROPERTIES: list[tuple[str, str, str, Callable[[int], bool]]] = [
    ("is_perfect_square", "n is the square of an integer",
     "r = int(n ** 0.5)\nwhile r * r > n:\n    r -= 1\nwhile (r + 1) * (r + 1) <= n:\n    r += 1\n"
     "return r * r == n", lambda n: any(k * k == n for k in range(n + 1))),
    ("is_perfect_cube", "n is the cube of an integer",
     "r = round(n ** (1 / 3))\nreturn any((r + d) ** 3 == n for d in (-1, 0, 1))",
     lambda n: any(k ** 3 == n for k in range(n + 1))),
    ("is_triangular", "n = k (k + 1) / 2 for some integer k >= 0",
     "k = int(((8 * n + 1) ** 0.5 - 1) / 2)\nreturn any((k + d) * (k + d + 1) // 2 == n "
     "for d in (-1, 0, 1))", lambda n: any(k * (k + 1) // 2 == n for k in range(n + 1))),
    ("is_fibonacci_number", "n is a Fibonacci number",
     "a, b = 0, 1\nwhile a < n:\n    a, b = b, a + b\nreturn a == n",
     lambda n: n in {0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89}),
    ("is_palindromic_number", "the decimal digits of n read the same backwards",
     "reversed_n, m = 0, n\nwhile m:\n    m, d = divmod(m, 10)\n    reversed_n = reversed_n * 10 + d\n"
     "return reversed_n == n", lambda n: str(n) == str(n)[::-1]),
    ("is_harshad", "n is divisible by the sum of its decimal digits",
     "total, m = 0, n\nwhile m:\n    m, d = divmod(m, 10)\n    total += d\nreturn n % total == 0",
     lambda n: n % sum(map(int, str(n))) == 0),
    ("is_abundant", "the sum of the proper divisors of n exceeds n",
     "total = 0\nfor d in range(1, n // 2 + 1):\n    if n % d == 0:\n        total += d\n"
     "return total > n", lambda n: _divisor_sum(n) > n),
    ("is_deficient", "the sum of the proper divisors of n is less than n",
     "total = 0\nfor d in range(1, n // 2 + 1):\n    if n % d == 0:\n        total += d\n"
     "return total < n", lambda n: _divisor_sum(n) < n),
    ("is_pronic", "n = k (k + 1) for some integer k >= 0",
     "k = 0\nwhile k * (k + 1) < n:\n    k += 1\nreturn k * (k + 1) == n",
     lambda n: any(k * (k + 1) == n for k in range(n + 1))),
    ("is_automorphic", "the square of n ends in the digits of n",
     "power = 10\nwhile power <= n:\n    power *= 10\nreturn n * n % power == n",
     lambda n: str(n * n).endswith(str(n))),
    ("is_semiprime", "n is the product of exactly two primes (not necessarily distinct)",
     "count, d, m = 0, 2, n\nwhile d * d <= m:\n    while m % d == 0:\n        m //= d\n"
     "        count += 1\n    d += 1\nif m > 1:\n    count += 1\nreturn count == 2",
     lambda n: sum(1 for p in range(2, n + 1) for q in range(p, n + 1) if p * q == n
                   and all(p % k for k in range(2, p)) and all(q % k for k in range(2, q))) == 1),
    ("is_power_of_three", "n is 3 to some non-negative integer power",
     "while n % 3 == 0:\n    n //= 3\nreturn n == 1", lambda n: n in {3 ** k for k in range(6)}),
]


def property_exercises() -> Iterator[dict]:
    for name, doc, body, oracle in _PROPERTIES:
        expected = [n for n in range(1, 100) if oracle(n)]
        tests = [f"assert [n for n in range(1, 100) if {name}(n)] == {expected}"]
        yield _exercise(name, "(n: int) -> bool", f"For an integer n >= 1, return True if {doc}.",
                        body, tests, "number_property")


def family_records() -> list[dict]:
    """Every family exercise as an exercises record."""
    return [r for family in (base_exercises, sequence_exercises, digit_exercises,
                             char_filter_exercises, unit_exercises, geometry_exercises,
                             reduction_exercises, property_exercises)
            for r in family()]
