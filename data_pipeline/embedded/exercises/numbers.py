"""Exercises on integers and arithmetic. Each function is one exercise; the asserts after it are
its tests."""


def is_prime(n: int) -> bool:
    """Return True if `n` is a prime number (n < 2 is not prime)."""
    if n < 2:
        return False
    d = 2
    while d * d <= n:
        if n % d == 0:
            return False
        d += 1
    return True


assert [n for n in range(20) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]
assert is_prime(7919)
assert not is_prime(7917)


def gcd(a: int, b: int) -> int:
    """Greatest common divisor of two non-negative integers by Euclid's algorithm
    (gcd(0, 0) is 0)."""
    while b:
        a, b = b, a % b
    return a


assert gcd(48, 18) == 6
assert gcd(17, 5) == 1
assert gcd(0, 9) == 9
assert gcd(0, 0) == 0


def lcm(a: int, b: int) -> int:
    """Least common multiple of two positive integers."""
    x, y = a, b
    while y:
        x, y = y, x % y
    return a // x * b


assert lcm(4, 6) == 12
assert lcm(7, 3) == 21
assert lcm(10, 10) == 10


def prime_factors(n: int) -> list:
    """Prime factors of n >= 2 in non-decreasing order, with repetition."""
    factors = []
    d = 2
    while d * d <= n:
        while n % d == 0:
            factors.append(d)
            n //= d
        d += 1
    if n > 1:
        factors.append(n)
    return factors


assert prime_factors(360) == [2, 2, 2, 3, 3, 5]
assert prime_factors(97) == [97]
assert prime_factors(2 * 3 * 101) == [2, 3, 101]


def sieve(limit: int) -> list:
    """All primes below `limit`, by the sieve of Eratosthenes."""
    if limit < 3:
        return []
    flags = [True] * limit
    flags[0] = flags[1] = False
    for p in range(2, int(limit ** 0.5) + 1):
        if flags[p]:
            for multiple in range(p * p, limit, p):
                flags[multiple] = False
    return [i for i, is_p in enumerate(flags) if is_p]


assert sieve(30) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
assert sieve(2) == []
assert len(sieve(1000)) == 168


def factorial(n: int) -> int:
    """n! for n >= 0, computed with a loop."""
    result = 1
    for k in range(2, n + 1):
        result *= k
    return result


assert factorial(0) == 1
assert factorial(5) == 120
assert factorial(20) == 2432902008176640000


def binomial(n: int, k: int) -> int:
    """The binomial coefficient C(n, k), 0 when k < 0 or k > n, without computing factorials."""
    if k < 0 or k > n:
        return 0
    k = min(k, n - k)
    result = 1
    for i in range(1, k + 1):
        result = result * (n - k + i) // i
    return result


assert binomial(5, 2) == 10
assert binomial(52, 5) == 2598960
assert binomial(3, 4) == 0
assert [binomial(4, k) for k in range(5)] == [1, 4, 6, 4, 1]


def is_perfect(n: int) -> bool:
    """Return True if n > 1 equals the sum of its proper divisors."""
    if n < 2:
        return False
    total = 1
    d = 2
    while d * d <= n:
        if n % d == 0:
            total += d
            if d != n // d:
                total += n // d
        d += 1
    return total == n


assert [n for n in range(1, 10000) if is_perfect(n)] == [6, 28, 496, 8128]


def collatz_steps(n: int) -> int:
    """Number of Collatz steps (n -> n/2 if even, else 3n+1) needed to reach 1 from n >= 1."""
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


assert collatz_steps(1) == 0
assert collatz_steps(6) == 8
assert collatz_steps(27) == 111


def integer_sqrt(n: int) -> int:
    """The largest integer r with r * r <= n, for n >= 0, by binary search."""
    low, high = 0, n + 1
    while high - low > 1:
        mid = (low + high) // 2
        if mid * mid <= n:
            low = mid
        else:
            high = mid
    return low


assert integer_sqrt(0) == 0
assert integer_sqrt(15) == 3
assert integer_sqrt(16) == 4
assert integer_sqrt(10 ** 20) == 10 ** 10


def power_mod(base: int, exponent: int, modulus: int) -> int:
    """base ** exponent % modulus by repeated squaring (exponent >= 0, modulus >= 1)."""
    result = 1 % modulus
    base %= modulus
    while exponent:
        if exponent & 1:
            result = result * base % modulus
        base = base * base % modulus
        exponent >>= 1
    return result


assert power_mod(2, 10, 1000) == 24
assert power_mod(3, 0, 7) == 1
assert power_mod(5, 117, 19) == pow(5, 117, 19)
assert power_mod(10, 3, 1) == 0


def is_armstrong(n: int) -> bool:
    """Return True if n >= 0 equals the sum of its digits each raised to the number of digits."""
    digits = str(n)
    return n == sum(int(d) ** len(digits) for d in digits)


assert is_armstrong(153)
assert is_armstrong(9474)
assert not is_armstrong(154)


def is_happy(n: int) -> bool:
    """Return True if repeatedly replacing n by the sum of the squares of its digits reaches 1."""
    seen = set()
    while n != 1 and n not in seen:
        seen.add(n)
        n = sum(int(d) ** 2 for d in str(n))
    return n == 1


assert is_happy(19)
assert is_happy(7)
assert not is_happy(4)


def leap_year(year: int) -> bool:
    """Return True for Gregorian leap years: divisible by 4, except centuries not divisible
    by 400."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


assert leap_year(2024)
assert not leap_year(1900)
assert leap_year(2000)
assert not leap_year(2023)


def celsius_to_fahrenheit(celsius: float) -> float:
    """Convert a temperature from degrees Celsius to degrees Fahrenheit."""
    return celsius * 9 / 5 + 32


assert celsius_to_fahrenheit(100) == 212
assert celsius_to_fahrenheit(-40) == -40
assert abs(celsius_to_fahrenheit(37) - 98.6) < 1e-9


def count_divisors(n: int) -> int:
    """Number of positive divisors of n >= 1."""
    count = 0
    d = 1
    while d * d <= n:
        if n % d == 0:
            count += 1 if d * d == n else 2
        d += 1
    return count


assert count_divisors(1) == 1
assert count_divisors(12) == 6
assert count_divisors(36) == 9


def to_binary(n: int) -> str:
    """Binary representation of n >= 0 without a prefix, built with repeated division."""
    if n == 0:
        return "0"
    bits = []
    while n:
        bits.append(str(n % 2))
        n //= 2
    return "".join(reversed(bits))


assert to_binary(0) == "0"
assert to_binary(10) == "1010"
assert to_binary(255) == "11111111"


def count_set_bits(n: int) -> int:
    """Number of 1 bits in the binary form of n >= 0 (Kernighan's trick)."""
    count = 0
    while n:
        n &= n - 1
        count += 1
    return count


assert count_set_bits(0) == 0
assert count_set_bits(255) == 8
assert count_set_bits(2 ** 40 + 1) == 2


def is_power_of_two(n: int) -> bool:
    """Return True if n is a positive power of two."""
    return n > 0 and n & (n - 1) == 0


assert is_power_of_two(1)
assert is_power_of_two(1024)
assert not is_power_of_two(0)
assert not is_power_of_two(12)


def reverse_integer(n: int) -> int:
    """Reverse the decimal digits of n, keeping its sign: -123 -> -321, 120 -> 21."""
    sign = -1 if n < 0 else 1
    return sign * int(str(abs(n))[::-1])


assert reverse_integer(123) == 321
assert reverse_integer(-123) == -321
assert reverse_integer(120) == 21
assert reverse_integer(0) == 0


def compound_interest(principal: float, rate: float, years: int) -> float:
    """Balance after `years` of yearly compounding at `rate` (0.05 means 5%), rounded to cents."""
    balance = principal
    for _ in range(years):
        balance *= 1 + rate
    return round(balance, 2)


assert compound_interest(1000, 0.05, 0) == 1000
assert compound_interest(1000, 0.05, 2) == 1102.5
assert compound_interest(100, 0.10, 3) == 133.1


def fizzbuzz(n: int) -> list:
    """The FizzBuzz sequence for 1..n: 'Fizz' for multiples of 3, 'Buzz' for 5, 'FizzBuzz' for
    both, otherwise the number as a string."""
    out = []
    for i in range(1, n + 1):
        word = ("Fizz" if i % 3 == 0 else "") + ("Buzz" if i % 5 == 0 else "")
        out.append(word or str(i))
    return out


assert fizzbuzz(5) == ["1", "2", "Fizz", "4", "Buzz"]
assert fizzbuzz(15)[-1] == "FizzBuzz"
assert fizzbuzz(0) == []


def digital_root(n: int) -> int:
    """Repeatedly sum the decimal digits of n >= 0 until one digit remains."""
    while n >= 10:
        n = sum(int(d) for d in str(n))
    return n


assert digital_root(0) == 0
assert digital_root(942) == 6
assert digital_root(132189) == 6
