"""Exercises on strings. Each function is one exercise; the asserts after it are its tests."""


def reverse_words(sentence: str) -> str:
    """Return the words of `sentence` in reverse order, separated by single spaces.

    Runs of whitespace between words count as one separator."""
    return " ".join(reversed(sentence.split()))


assert reverse_words("the quick brown fox") == "fox brown quick the"
assert reverse_words("  hello   world ") == "world hello"
assert reverse_words("") == ""


def is_palindrome(text: str) -> bool:
    """Return True if `text` reads the same backwards, ignoring case and any character that is
    not a letter or a digit."""
    cleaned = [c.lower() for c in text if c.isalnum()]
    return cleaned == cleaned[::-1]


assert is_palindrome("A man, a plan, a canal: Panama")
assert is_palindrome("")
assert not is_palindrome("python")
assert is_palindrome("No 'x' in Nixon")


def count_vowels(text: str) -> int:
    """Count the vowels (a, e, i, o, u, in either case) in `text`."""
    return sum(1 for c in text.lower() if c in "aeiou")


assert count_vowels("Hello World") == 3
assert count_vowels("rhythm") == 0
assert count_vowels("AEIOUaeiou") == 10


def capitalize_words(text: str) -> str:
    """Upper-case the first letter of every space-separated word and lower-case the rest.

    Spaces are kept exactly as they are."""
    return " ".join(word[:1].upper() + word[1:].lower() for word in text.split(" "))


assert capitalize_words("hello wORLD") == "Hello World"
assert capitalize_words("a  b") == "A  B"
assert capitalize_words("") == ""


def run_length_encode(text: str) -> str:
    """Compress runs of repeated characters as character followed by run length.

    >>> run_length_encode("aaabcc")
    'a3b1c2'
    """
    out = []
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[j] == text[i]:
            j += 1
        out.append(f"{text[i]}{j - i}")
        i = j
    return "".join(out)


assert run_length_encode("aaabcc") == "a3b1c2"
assert run_length_encode("") == ""
assert run_length_encode("abc") == "a1b1c1"
assert run_length_encode("zzzzzzzzzzzz") == "z12"


def run_length_decode(encoded: str) -> str:
    """Undo `run_length_encode`: each character is followed by a decimal count (possibly with
    several digits)."""
    out = []
    i = 0
    while i < len(encoded):
        char = encoded[i]
        j = i + 1
        while j < len(encoded) and encoded[j].isdigit():
            j += 1
        out.append(char * int(encoded[i + 1:j]))
        i = j
    return "".join(out)


assert run_length_decode("a3b1c2") == "aaabcc"
assert run_length_decode("z12") == "z" * 12
assert run_length_decode("") == ""


def is_anagram(first: str, second: str) -> bool:
    """Return True if the two strings use the same letters the same number of times, ignoring
    case and spaces."""
    def letters(s: str) -> list:
        return sorted(c.lower() for c in s if c != " ")

    return letters(first) == letters(second)


assert is_anagram("Listen", "Silent")
assert is_anagram("dormitory", "dirty room")
assert not is_anagram("apple", "pale")


def caesar_shift(text: str, shift: int) -> str:
    """Shift every ASCII letter `shift` places along the alphabet, wrapping around and keeping
    case; other characters are unchanged. `shift` may be negative."""
    out = []
    for c in text:
        if "a" <= c <= "z":
            out.append(chr((ord(c) - ord("a") + shift) % 26 + ord("a")))
        elif "A" <= c <= "Z":
            out.append(chr((ord(c) - ord("A") + shift) % 26 + ord("A")))
        else:
            out.append(c)
    return "".join(out)


assert caesar_shift("Hello, World!", 3) == "Khoor, Zruog!"
assert caesar_shift("xyz", 3) == "abc"
assert caesar_shift(caesar_shift("Round trip", 11), -11) == "Round trip"


def longest_word(sentence: str) -> str:
    """Return the longest space-separated word; on a tie, the first one. Empty input gives ''."""
    best = ""
    for word in sentence.split():
        if len(word) > len(best):
            best = word
    return best


assert longest_word("I love programming in Python") == "programming"
assert longest_word("cat dog") == "cat"
assert longest_word("") == ""


def char_frequency(text: str) -> dict:
    """Map each character of `text` to how many times it occurs."""
    counts = {}
    for c in text:
        counts[c] = counts.get(c, 0) + 1
    return counts


assert char_frequency("banana") == {"b": 1, "a": 3, "n": 2}
assert char_frequency("") == {}


def first_unique_char(text: str) -> int:
    """Return the index of the first character that occurs exactly once, or -1."""
    counts = {}
    for c in text:
        counts[c] = counts.get(c, 0) + 1
    for i, c in enumerate(text):
        if counts[c] == 1:
            return i
    return -1


assert first_unique_char("leetcode") == 0
assert first_unique_char("loveleetcode") == 2
assert first_unique_char("aabb") == -1


def is_pangram(sentence: str) -> bool:
    """Return True if `sentence` contains every letter of the English alphabet (any case)."""
    return set("abcdefghijklmnopqrstuvwxyz") <= set(sentence.lower())


assert is_pangram("The quick brown fox jumps over the lazy dog")
assert not is_pangram("Hello world")


def is_isogram(word: str) -> bool:
    """Return True if no letter appears more than once, ignoring case, hyphens and spaces."""
    letters = [c.lower() for c in word if c.isalpha()]
    return len(letters) == len(set(letters))


assert is_isogram("lumberjacks")
assert is_isogram("six-year-old")
assert not is_isogram("Alphabet")


def snake_to_camel(name: str) -> str:
    """Convert snake_case to lowerCamelCase: `max_line_length` -> `maxLineLength`."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


assert snake_to_camel("max_line_length") == "maxLineLength"
assert snake_to_camel("x") == "x"
assert snake_to_camel("http_response_code") == "httpResponseCode"


def camel_to_snake(name: str) -> str:
    """Convert lowerCamelCase or UpperCamelCase to snake_case: `parseHttpResponse` ->
    `parse_http_response`."""
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i > 0:
            out.append("_")
        out.append(c.lower())
    return "".join(out)


assert camel_to_snake("parseHttpResponse") == "parse_http_response"
assert camel_to_snake("Parser") == "parser"
assert camel_to_snake("x") == "x"


def count_words(text: str) -> dict:
    """Count how often each word occurs, case-insensitively; words are runs of letters."""
    counts = {}
    word = ""
    for c in text.lower() + " ":
        if c.isalpha():
            word += c
        elif word:
            counts[word] = counts.get(word, 0) + 1
            word = ""
    return counts


assert count_words("The cat and the hat.") == {"the": 2, "cat": 1, "and": 1, "hat": 1}
assert count_words("") == {}
assert count_words("Go, go, GO!") == {"go": 3}


def remove_duplicate_chars(text: str) -> str:
    """Keep only the first occurrence of each character, preserving order."""
    # Dictionary keys are unique and remember insertion order.
    return "".join(dict.fromkeys(text))


assert remove_duplicate_chars("programming") == "progamin"
assert remove_duplicate_chars("aaaa") == "a"
assert remove_duplicate_chars("") == ""


def acronym(phrase: str) -> str:
    """Build an upper-case acronym from the first letter of each word; hyphens separate words too.

    >>> acronym("Portable Network Graphics")
    'PNG'
    """
    words = phrase.replace("-", " ").split()
    return "".join(w[0].upper() for w in words)


assert acronym("Portable Network Graphics") == "PNG"
assert acronym("Complementary metal-oxide semiconductor") == "CMOS"
assert acronym("") == ""


def wrap_text(text: str, width: int) -> list:
    """Greedily break `text` into lines of at most `width` characters without splitting words.

    A word longer than `width` gets a line of its own."""
    lines = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines


assert wrap_text("the quick brown fox jumps", 10) == ["the quick", "brown fox", "jumps"]
assert wrap_text("", 5) == []
assert wrap_text("extraordinary a", 5) == ["extraordinary", "a"]


def is_valid_identifier(name: str) -> bool:
    """Return True if `name` is a valid Python identifier that is not a keyword."""
    import keyword

    return name.isidentifier() and not keyword.iskeyword(name)


assert is_valid_identifier("total_count")
assert not is_valid_identifier("2fast")
assert not is_valid_identifier("class")
assert is_valid_identifier("_private")


def balanced_brackets(text: str) -> bool:
    """Return True if every (), [] and {} in `text` is properly matched and nested; other
    characters are ignored."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    for c in text:
        if c in "([{":
            stack.append(c)
        elif c in pairs:
            if not stack or stack.pop() != pairs[c]:
                return False
    return not stack


assert balanced_brackets("f(a[1], {b: 2})")
assert not balanced_brackets("(]")
assert not balanced_brackets("((")
assert balanced_brackets("")


def longest_common_prefix(words: list) -> str:
    """Return the longest prefix shared by all strings in `words` ('' for an empty list)."""
    if not words:
        return ""
    prefix = words[0]
    for word in words[1:]:
        while not word.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


assert longest_common_prefix(["flower", "flow", "flight"]) == "fl"
assert longest_common_prefix(["dog", "racecar"]) == ""
assert longest_common_prefix([]) == ""
assert longest_common_prefix(["same", "same"]) == "same"


def expand_tabs(line: str, tab_size: int = 4) -> str:
    """Replace each tab with spaces up to the next multiple of `tab_size` columns."""
    out = []
    column = 0
    for c in line:
        if c == "\t":
            spaces = tab_size - column % tab_size
            out.append(" " * spaces)
            column += spaces
        else:
            out.append(c)
            column += 1
    return "".join(out)


assert expand_tabs("a\tb") == "a   b"
assert expand_tabs("\tx", 8) == "        x"
assert expand_tabs("abcd\te") == "abcd    e"
assert expand_tabs("ab\tc") == "ab".expandtabs(4) + "  c"


def rotate_string(text: str, k: int) -> str:
    """Rotate `text` left by `k` characters (k may exceed the length or be negative)."""
    if not text:
        return text
    k %= len(text)
    return text[k:] + text[:k]


assert rotate_string("abcdef", 2) == "cdefab"
assert rotate_string("abcdef", -1) == "fabcde"
assert rotate_string("abc", 3) == "abc"
assert rotate_string("", 5) == ""


def mask_email(email: str) -> str:
    """Hide all but the first character of the user part of an e-mail address with '*'.

    >>> mask_email("alice@example.com")
    'a****@example.com'
    """
    user, domain = email.split("@")
    return user[0] + "*" * (len(user) - 1) + "@" + domain


assert mask_email("alice@example.com") == "a****@example.com"
assert mask_email("b@x.org") == "b@x.org"


def parse_key_values(text: str) -> dict:
    """Parse 'key=value' pairs separated by semicolons; whitespace around keys and values is
    stripped and empty pairs are ignored."""
    result = {}
    for pair in text.split(";"):
        if pair.strip():
            key, value = pair.split("=", 1)
            result[key.strip()] = value.strip()
    return result


assert parse_key_values("a=1; b = two ;;c=x=y") == {"a": "1", "b": "two", "c": "x=y"}
assert parse_key_values("") == {}


def roman_to_int(numeral: str) -> int:
    """Convert a Roman numeral (I, V, X, L, C, D, M with subtractive pairs) to an integer."""
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total = 0
    for i, c in enumerate(numeral):
        if i + 1 < len(numeral) and values[c] < values[numeral[i + 1]]:
            total -= values[c]
        else:
            total += values[c]
    return total


assert roman_to_int("MCMXCIV") == 1994
assert roman_to_int("III") == 3
assert roman_to_int("XLII") == 42


def int_to_roman(number: int) -> str:
    """Convert 1 <= number <= 3999 to a Roman numeral."""
    table = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
             (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
    out = []
    for value, symbol in table:
        while number >= value:
            out.append(symbol)
            number -= value
    return "".join(out)


assert int_to_roman(1994) == "MCMXCIV"
assert int_to_roman(3999) == "MMMCMXCIX"
assert int_to_roman(4) == "IV"
