"""`python -m bot run` under cProfile counting the main thread's CPU time (not time spent waiting),
switched on by SIGUSR1 (bench/flow.py sends it once the bot polls, so start-up is left out) and
written to BENCH_PROFILE when the bot stops. Summarise with bench/profile_summary.py."""

import atexit
import cProfile
import os
import runpy
import signal
import sys
import time

profile = cProfile.Profile(time.thread_time)
signal.signal(signal.SIGUSR1, lambda *_: profile.enable())


def _write() -> None:
    profile.disable()
    profile.dump_stats(os.environ["BENCH_PROFILE"])


atexit.register(_write)
sys.argv = ["bot", "run"]
runpy.run_module("bot", run_name="__main__", alter_sys=True)
