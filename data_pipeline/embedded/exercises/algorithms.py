"""Exercises on dictionaries, sets, searching, sorting and recursion. Each function is one
exercise; the asserts after it are its tests."""


def binary_search(items: list, target) -> int:
    """Index of `target` in the sorted list `items`, or -1, in O(log n) comparisons."""
    low, high = 0, len(items) - 1
    while low <= high:
        mid = (low + high) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            low = mid + 1
        else:
            high = mid - 1
    return -1


assert binary_search([1, 3, 5, 7, 9, 11], 7) == 3
assert binary_search([1, 3, 5], 4) == -1
assert binary_search([], 1) == -1


def lower_bound(items: list, target) -> int:
    """First index i such that items[i] >= target in a sorted list (len(items) if none)."""
    low, high = 0, len(items)
    while low < high:
        mid = (low + high) // 2
        if items[mid] < target:
            low = mid + 1
        else:
            high = mid
    return low


assert lower_bound([1, 2, 2, 2, 5], 2) == 1
assert lower_bound([1, 2, 4], 3) == 2
assert lower_bound([1, 2], 9) == 2


def insertion_sort(items: list) -> list:
    """Return a sorted copy of `items` using insertion sort."""
    out = list(items)
    for i in range(1, len(out)):
        key = out[i]
        j = i - 1
        while j >= 0 and out[j] > key:
            out[j + 1] = out[j]
            j -= 1
        out[j + 1] = key
    return out


assert insertion_sort([5, 2, 4, 6, 1, 3]) == [1, 2, 3, 4, 5, 6]
assert insertion_sort([]) == []
assert insertion_sort([2, 1, 2]) == [1, 2, 2]


def merge_sort(items: list) -> list:
    """Return a sorted copy of `items` using top-down merge sort (stable)."""
    if len(items) <= 1:
        return list(items)
    mid = len(items) // 2
    left, right = merge_sort(items[:mid]), merge_sort(items[mid:])
    out = []
    i = j = 0
    while i < len(left) and j < len(right):
        if right[j] < left[i]:
            out.append(right[j])
            j += 1
        else:
            out.append(left[i])
            i += 1
    return out + left[i:] + right[j:]


assert merge_sort([38, 27, 43, 3, 9, 82, 10]) == [3, 9, 10, 27, 38, 43, 82]
assert merge_sort([1]) == [1]
assert merge_sort(list(range(50, 0, -1))) == list(range(1, 51))


def quicksort(items: list) -> list:
    """Return a sorted copy of `items` using quicksort with the middle element as pivot."""
    if len(items) <= 1:
        return list(items)
    pivot = items[len(items) // 2]
    return (quicksort([x for x in items if x < pivot]) + [x for x in items if x == pivot]
            + quicksort([x for x in items if x > pivot]))


assert quicksort([3, 6, 8, 10, 1, 2, 1]) == [1, 1, 2, 3, 6, 8, 10]
assert quicksort([]) == []


def counting_sort(values: list, max_value: int) -> list:
    """Sort integers in 0..max_value by counting occurrences."""
    counts = [0] * (max_value + 1)
    for v in values:
        counts[v] += 1
    out = []
    for v, c in enumerate(counts):
        out.extend([v] * c)
    return out


assert counting_sort([4, 2, 2, 8, 3, 3, 1], 9) == [1, 2, 2, 3, 3, 4, 8]
assert counting_sort([], 3) == []


def invert_dict(mapping: dict) -> dict:
    """Map each value to the sorted list of keys that had it."""
    out = {}
    for key, value in mapping.items():
        out.setdefault(value, []).append(key)
    return {value: sorted(keys) for value, keys in out.items()}


assert invert_dict({"a": 1, "b": 2, "c": 1}) == {1: ["a", "c"], 2: ["b"]}
assert invert_dict({}) == {}


def group_by_length(words: list) -> dict:
    """Group words by their length, keeping the original order inside each group."""
    groups = {}
    for word in words:
        groups.setdefault(len(word), []).append(word)
    return groups


assert group_by_length(["a", "bb", "c", "ddd"]) == {1: ["a", "c"], 2: ["bb"], 3: ["ddd"]}
assert group_by_length([]) == {}


def merge_counts(first: dict, second: dict) -> dict:
    """Add two word-count dictionaries key by key."""
    out = dict(first)
    for key, count in second.items():
        out[key] = out.get(key, 0) + count
    return out


assert merge_counts({"a": 1, "b": 2}, {"b": 3, "c": 4}) == {"a": 1, "b": 5, "c": 4}
assert merge_counts({}, {}) == {}


def top_k_frequent(items: list, k: int) -> list:
    """The k most frequent values, most frequent first; ties broken by first appearance."""
    counts = {}
    for x in items:
        counts[x] = counts.get(x, 0) + 1
    order = {x: i for i, x in reversed(list(enumerate(items)))}
    return sorted(counts, key=lambda x: (-counts[x], order[x]))[:k]


assert top_k_frequent([1, 1, 1, 2, 2, 3], 2) == [1, 2]
assert top_k_frequent(["b", "a", "b", "a", "c"], 2) == ["b", "a"]
assert top_k_frequent([], 3) == []


def common_elements(a: list, b: list) -> list:
    """Values present in both lists, sorted, each listed once."""
    return sorted(set(a) & set(b))


assert common_elements([1, 2, 2, 3], [2, 3, 4]) == [2, 3]
assert common_elements([1], [2]) == []


def symmetric_difference(a: list, b: list) -> list:
    """Values in exactly one of the two lists, sorted, each once."""
    return sorted(set(a) ^ set(b))


assert symmetric_difference([1, 2, 3], [3, 4]) == [1, 2, 4]
assert symmetric_difference([], []) == []


def has_cycle(graph: dict) -> bool:
    """Return True if the directed graph {node: [successors]} contains a cycle."""
    state = {}

    def visit(node) -> bool:
        state[node] = "active"
        for nxt in graph.get(node, []):
            if state.get(nxt) == "active" or (nxt not in state and visit(nxt)):
                return True
        state[node] = "done"
        return False

    return any(node not in state and visit(node) for node in graph)


assert has_cycle({"a": ["b"], "b": ["c"], "c": ["a"]})
assert not has_cycle({"a": ["b", "c"], "b": ["c"], "c": []})
assert has_cycle({"x": ["x"]})


def topological_sort(graph: dict) -> list:
    """Order the nodes of an acyclic directed graph {node: [successors]} so that every edge goes
    forward; among ready nodes, pick the smallest first (Kahn's algorithm)."""
    import heapq

    indegree = {node: 0 for node in graph}
    for successors in graph.values():
        for s in successors:
            indegree[s] = indegree.get(s, 0) + 1
    ready = [node for node, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for s in graph.get(node, []):
            indegree[s] -= 1
            if indegree[s] == 0:
                heapq.heappush(ready, s)
    return order


assert topological_sort({"b": ["c"], "a": ["b", "c"], "c": []}) == ["a", "b", "c"]
assert topological_sort({3: [1], 2: [1], 1: []}) == [2, 3, 1]


def shortest_path_length(graph: dict, start, goal) -> int:
    """Number of edges on a shortest path in an unweighted graph {node: [neighbours]}, or -1."""
    from collections import deque

    distance = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            return distance[node]
        for nxt in graph.get(node, []):
            if nxt not in distance:
                distance[nxt] = distance[node] + 1
                queue.append(nxt)
    return -1



assert shortest_path_length({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": ["e"], "e": []}, "a", "e") == 3
assert shortest_path_length({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": ["e"], "e": []}, "e", "a") == -1
assert shortest_path_length({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": ["e"], "e": []}, "a", "a") == 0


def count_islands(grid: list) -> int:
    """Count groups of '1' cells connected horizontally or vertically in a grid of strings."""
    seen = set()
    rows, cols = len(grid), len(grid[0]) if grid else 0

    def flood(r: int, c: int) -> None:
        stack = [(r, c)]
        while stack:
            r, c = stack.pop()
            if 0 <= r < rows and 0 <= c < cols and grid[r][c] == "1" and (r, c) not in seen:
                seen.add((r, c))
                stack.extend([(r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)])

    count = 0
    for r in range(rows):
        for c in range(cols):
            if grid[r][c] == "1" and (r, c) not in seen:
                flood(r, c)
                count += 1
    return count


assert count_islands(["11000", "11000", "00100", "00011"]) == 3
assert count_islands(["000"]) == 0
assert count_islands([]) == 0


def power_set(items: list) -> list:
    """All subsets of `items` as lists, in the order produced by including or excluding each
    element from the first to the last (excluded first)."""
    subsets = [[]]
    for x in items:
        subsets = subsets + [s + [x] for s in subsets]
    return subsets


assert power_set([1, 2]) == [[], [1], [2], [1, 2]]
assert len(power_set([1, 2, 3, 4])) == 16
assert power_set([]) == [[]]


def permutations(items: list) -> list:
    """All orderings of distinct `items`, in lexicographic order of positions, recursively."""
    if len(items) <= 1:
        return [list(items)]
    out = []
    for i, x in enumerate(items):
        for rest in permutations(items[:i] + items[i + 1:]):
            out.append([x] + rest)
    return out


assert permutations([1, 2, 3]) == [[1, 2, 3], [1, 3, 2], [2, 1, 3], [2, 3, 1], [3, 1, 2],
                                   [3, 2, 1]]
assert permutations([]) == [[]]


def climb_stairs(n: int) -> int:
    """Number of ways to climb n stairs taking 1 or 2 steps at a time."""
    a, b = 1, 1
    for _ in range(n):
        a, b = b, a + b
    return a


assert climb_stairs(0) == 1
assert climb_stairs(3) == 3
assert climb_stairs(10) == 89


def coin_change_ways(amount: int, coins: list) -> int:
    """Number of ways to make `amount` from unlimited coins of the given values
    (order does not matter)."""
    ways = [1] + [0] * amount
    for coin in coins:
        for total in range(coin, amount + 1):
            ways[total] += ways[total - coin]
    return ways[amount]


assert coin_change_ways(5, [1, 2, 5]) == 4
assert coin_change_ways(3, [2]) == 0
assert coin_change_ways(0, [7]) == 1


def min_coins(amount: int, coins: list) -> int:
    """Fewest coins that add up to `amount`, or -1 if impossible (dynamic programming)."""
    inf = amount + 1
    best = [0] + [inf] * amount
    for total in range(1, amount + 1):
        for coin in coins:
            if coin <= total:
                best[total] = min(best[total], best[total - coin] + 1)
    return best[amount] if best[amount] != inf else -1


assert min_coins(11, [1, 2, 5]) == 3
assert min_coins(3, [2]) == -1
assert min_coins(6, [1, 3, 4]) == 2


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: fewest single-character inserts, deletes or substitutions turning
    a into b."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


assert edit_distance("kitten", "sitting") == 3
assert edit_distance("", "abc") == 3
assert edit_distance("same", "same") == 0


def longest_common_subsequence(a: str, b: str) -> int:
    """Length of the longest subsequence common to both strings."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            if a[i] == b[j]:
                table[i][j] = 1 + table[i + 1][j + 1]
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    return table[0][0]


assert longest_common_subsequence("abcde", "ace") == 3
assert longest_common_subsequence("abc", "def") == 0


def knapsack(capacity: int, items: list) -> int:
    """Best total value of (weight, value) items with total weight <= capacity, each item used
    at most once."""
    best = [0] * (capacity + 1)
    for weight, value in items:
        for c in range(capacity, weight - 1, -1):
            best[c] = max(best[c], best[c - weight] + value)
    return best[capacity]


assert knapsack(50, [(10, 60), (20, 100), (30, 120)]) == 220
assert knapsack(0, [(1, 5)]) == 0
assert knapsack(7, [(3, 4), (4, 5), (2, 3)]) == 9


def hanoi_moves(n: int, source: str = "A", target: str = "C", spare: str = "B") -> list:
    """The moves (from_peg, to_peg) that transfer n disks from `source` to `target`."""
    if n == 0:
        return []
    return (hanoi_moves(n - 1, source, spare, target) + [(source, target)]
            + hanoi_moves(n - 1, spare, target, source))


assert hanoi_moves(1) == [("A", "C")]
assert hanoi_moves(2) == [("A", "B"), ("A", "C"), ("B", "C")]
assert len(hanoi_moves(6)) == 63


def n_queens_count(n: int) -> int:
    """Number of ways to place n non-attacking queens on an n x n board (backtracking)."""
    def place(row: int, cols: set, diag1: set, diag2: set) -> int:
        if row == n:
            return 1
        total = 0
        for c in range(n):
            if c not in cols and row - c not in diag1 and row + c not in diag2:
                total += place(row + 1, cols | {c}, diag1 | {row - c}, diag2 | {row + c})
        return total

    return place(0, set(), set(), set())


assert n_queens_count(4) == 2
assert n_queens_count(6) == 4
assert n_queens_count(8) == 92


def interval_merge(intervals: list) -> list:
    """Merge overlapping closed intervals [start, end]; return them sorted by start."""
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


assert interval_merge([[1, 3], [2, 6], [8, 10], [15, 18]]) == [[1, 6], [8, 10], [15, 18]]
assert interval_merge([[1, 4], [4, 5]]) == [[1, 5]]
assert interval_merge([]) == []
