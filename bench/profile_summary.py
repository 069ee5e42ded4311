"""Where the bot's CPU went, by package, from a profile written by bench/profile_bot.py.

    .venv/bin/python bench/profile_summary.py /tmp/prof.out [--top 15]

Each function's own time (cProfile's tottime) is counted for the package its code is in: a
library under site-packages, a module of the standard library, or Petent's bot/ and flows/.
Built-in functions (C code: dict lookups, isinstance, socket calls) count for their callers.
cProfile makes many small calls dearer than they are, so the shares are a guide, not a measure.
"""

import argparse
import pstats
import re
from collections import Counter


def package(path: str, name: str) -> str:
    if path == "~":
        return "builtin " + re.sub(r"<(built-in method|method) '?([\w.]+)'?.*", r"\2", name)
    if found := re.search(r"site-packages/([^/]+)/", path):
        return found.group(1)
    if found := re.search(r"/(bot|flows)/", path):
        return f"petent {found.group(1)}/"
    if found := re.search(r"python3\.\d+/([^/]+?)(\.py)?/", path) or re.search(
        r"python3\.\d+/([^/]+?)\.py$", path
    ):
        return "stdlib " + found.group(1)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    stats = pstats.Stats(args.profile)
    shares: Counter[str] = Counter()
    for (path, _line, name), (_calls, _primitive, own, _cumulative, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if path != "~" or not callers:
            shares[package(path, name)] += own
            continue
        for (
            caller_path,
            _caller_line,
            caller_name,
        ), timing in callers.items():  # built-ins: split among their callers
            shares[package(caller_path, caller_name)] += timing[2]
    total = sum(shares.values())
    for name, seconds in shares.most_common(args.top):
        print(f"{seconds / total:6.1%}  {name}")
    print(f"{'':6}  of {total:.1f} s (profiled, so slower than without the profiler)")


if __name__ == "__main__":
    main()
