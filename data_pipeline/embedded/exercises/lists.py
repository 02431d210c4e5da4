"""Exercises on lists and sequences. Each function is one exercise; the asserts after it are its
tests."""


def running_sum(numbers: list) -> list:
    """Return the prefix sums: element i is the sum of numbers[0..i]."""
    total = 0
    out = []
    for x in numbers:
        total += x
        out.append(total)
    return out


assert running_sum([1, 2, 3, 4]) == [1, 3, 6, 10]
assert running_sum([]) == []
assert running_sum([5, -5, 5]) == [5, 0, 5]


def second_largest(numbers: list) -> int:
    """Return the second largest distinct value, or None if there is none."""
    distinct = sorted(set(numbers))
    return distinct[-2] if len(distinct) >= 2 else None


assert second_largest([3, 1, 4, 1, 5, 9, 2, 6]) == 6
assert second_largest([7, 7, 7]) is None
assert second_largest([2, 1]) == 1


def flatten(nested: list) -> list:
    """Flatten arbitrarily nested lists into one flat list, keeping left-to-right order."""
    out = []
    for item in nested:
        if isinstance(item, list):
            out.extend(flatten(item))
        else:
            out.append(item)
    return out


assert flatten([1, [2, [3, [4]], 5]]) == [1, 2, 3, 4, 5]
assert flatten([]) == []
assert flatten([[], [[]]]) == []


def chunk_list(items: list, size: int) -> list:
    """Split `items` into consecutive chunks of `size` elements; the last may be shorter."""
    return [items[i:i + size] for i in range(0, len(items), size)]


assert chunk_list([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
assert chunk_list([], 3) == []
assert chunk_list([1, 2], 5) == [[1, 2]]


def rotate_list(items: list, k: int) -> list:
    """Rotate right by k positions: [1, 2, 3, 4] with k=1 gives [4, 1, 2, 3]."""
    if not items:
        return []
    k %= len(items)
    return items[-k:] + items[:-k] if k else list(items)


assert rotate_list([1, 2, 3, 4], 1) == [4, 1, 2, 3]
assert rotate_list([1, 2, 3], 5) == [2, 3, 1]
assert rotate_list([], 2) == []
assert rotate_list([1, 2], 0) == [1, 2]


def remove_duplicates(items: list) -> list:
    """Remove repeated values, keeping the first occurrence of each, in order."""
    seen = set()
    out = []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


assert remove_duplicates([3, 1, 3, 2, 1]) == [3, 1, 2]
assert remove_duplicates([]) == []


def merge_sorted(a: list, b: list) -> list:
    """Merge two sorted lists into one sorted list in linear time."""
    i = j = 0
    out = []
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out + a[i:] + b[j:]


assert merge_sorted([1, 4, 9], [2, 3, 10, 11]) == [1, 2, 3, 4, 9, 10, 11]
assert merge_sorted([], [1]) == [1]
assert merge_sorted([2, 2], [2]) == [2, 2, 2]


def moving_average(values: list, window: int) -> list:
    """Averages of each run of `window` consecutive values (empty if there are fewer values)."""
    if len(values) < window:
        return []
    total = sum(values[:window])
    out = [total / window]
    for i in range(window, len(values)):
        total += values[i] - values[i - window]
        out.append(total / window)
    return out


assert moving_average([1, 2, 3, 4, 5], 2) == [1.5, 2.5, 3.5, 4.5]
assert moving_average([1, 2], 3) == []
assert moving_average([4, 4, 4], 3) == [4.0]


def pairwise_differences(values: list) -> list:
    """Differences between neighbours: [values[1] - values[0], values[2] - values[1], ...]."""
    return [b - a for a, b in zip(values, values[1:])]


assert pairwise_differences([1, 4, 9, 16]) == [3, 5, 7]
assert pairwise_differences([5]) == []


def max_subarray_sum(numbers: list) -> int:
    """Largest sum of a non-empty contiguous run of `numbers` (Kadane's algorithm)."""
    best = current = numbers[0]
    for x in numbers[1:]:
        current = max(x, current + x)
        best = max(best, current)
    return best


assert max_subarray_sum([-2, 1, -3, 4, -1, 2, 1, -5, 4]) == 6
assert max_subarray_sum([-3, -1, -2]) == -1
assert max_subarray_sum([5]) == 5


def two_sum(numbers: list, target: int) -> tuple:
    """Indices (i, j), i < j, of the first pair (by j) whose values add up to `target`, or None."""
    seen = {}
    for j, x in enumerate(numbers):
        if target - x in seen:
            return seen[target - x], j
        seen.setdefault(x, j)
    return None


assert two_sum([2, 7, 11, 15], 9) == (0, 1)
assert two_sum([3, 3], 6) == (0, 1)
assert two_sum([1, 2], 7) is None


def transpose(matrix: list) -> list:
    """Transpose a rectangular matrix given as a list of rows."""
    if not matrix:
        return []
    return [[row[c] for row in matrix] for c in range(len(matrix[0]))]


assert transpose([[1, 2, 3], [4, 5, 6]]) == [[1, 4], [2, 5], [3, 6]]
assert transpose([]) == []


def matrix_multiply(a: list, b: list) -> list:
    """Product of an n x m and an m x p matrix, both lists of rows."""
    return [[sum(a[i][k] * b[k][j] for k in range(len(b))) for j in range(len(b[0]))]
            for i in range(len(a))]


assert matrix_multiply([[1, 2], [3, 4]], [[5, 6], [7, 8]]) == [[19, 22], [43, 50]]
assert matrix_multiply([[1, 0], [0, 1]], [[9, 8], [7, 6]]) == [[9, 8], [7, 6]]
assert matrix_multiply([[2, 3]], [[4], [5]]) == [[23]]


def spiral_order(matrix: list) -> list:
    """Elements of a rectangular matrix in clockwise spiral order from the top-left corner."""
    out = []
    rows = [list(r) for r in matrix]
    while rows:
        out.extend(rows.pop(0))
        rows = [list(r) for r in zip(*rows)][::-1]
    return out


assert spiral_order([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == [1, 2, 3, 6, 9, 8, 7, 4, 5]
assert spiral_order([[1, 2], [3, 4], [5, 6]]) == [1, 2, 4, 6, 5, 3]
assert spiral_order([]) == []


def partition_even_odd(numbers: list) -> list:
    """Return the even numbers followed by the odd ones, each group in original order."""
    return [x for x in numbers if x % 2 == 0] + [x for x in numbers if x % 2]


assert partition_even_odd([1, 2, 3, 4, 5, 6]) == [2, 4, 6, 1, 3, 5]
assert partition_even_odd([]) == []


def interleave(a: list, b: list) -> list:
    """Alternate elements of a and b starting with a; leftovers of the longer list go last."""
    out = []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            out.append(a[i])
        if i < len(b):
            out.append(b[i])
    return out


assert interleave([1, 2, 3], ["a", "b"]) == [1, "a", 2, "b", 3]
assert interleave([], [1]) == [1]


def find_missing_number(numbers: list) -> int:
    """`numbers` holds every integer 0..n except one, in any order; return the missing one."""
    n = len(numbers)
    return n * (n + 1) // 2 - sum(numbers)


assert find_missing_number([3, 0, 1]) == 2
assert find_missing_number([0]) == 1
assert find_missing_number([1]) == 0


def longest_increasing_run(numbers: list) -> int:
    """Length of the longest strictly increasing run of consecutive elements."""
    best = current = 1 if numbers else 0
    for a, b in zip(numbers, numbers[1:]):
        current = current + 1 if b > a else 1
        best = max(best, current)
    return best


assert longest_increasing_run([1, 3, 5, 4, 7]) == 3
assert longest_increasing_run([2, 2, 2]) == 1
assert longest_increasing_run([]) == 0


def product_except_self(numbers: list) -> list:
    """Element i is the product of every element except numbers[i], without division."""
    n = len(numbers)
    out = [1] * n
    left = 1
    for i in range(n):
        out[i] = left
        left *= numbers[i]
    right = 1
    for i in range(n - 1, -1, -1):
        out[i] *= right
        right *= numbers[i]
    return out


assert product_except_self([1, 2, 3, 4]) == [24, 12, 8, 6]
assert product_except_self([0, 4, 5]) == [20, 0, 0]


def majority_element(items: list):
    """Return the value occurring more than len(items) // 2 times, or None (Boyer-Moore vote)."""
    candidate, count = None, 0
    for x in items:
        if count == 0:
            candidate = x
        count += 1 if x == candidate else -1
    return candidate if items.count(candidate) > len(items) // 2 else None


assert majority_element([2, 2, 1, 1, 2]) == 2
assert majority_element([1, 2, 3]) is None
assert majority_element([]) is None


def dedupe_sorted_in_place(items: list) -> int:
    """Remove duplicates from a sorted list in place; return the new length."""
    write = 0
    for x in items:
        if write == 0 or x != items[write - 1]:
            items[write] = x
            write += 1
    del items[write:]
    return write


assert (lambda v: (dedupe_sorted_in_place(v), v))([1, 1, 2, 3, 3, 3]) == (3, [1, 2, 3])
assert dedupe_sorted_in_place([]) == 0


def cumulative_max(numbers: list) -> list:
    """Element i is the maximum of numbers[0..i]."""
    out = []
    best = None
    for x in numbers:
        best = x if best is None else max(best, x)
        out.append(best)
    return out


assert cumulative_max([3, 1, 4, 1, 5]) == [3, 3, 4, 4, 5]
assert cumulative_max([]) == []
