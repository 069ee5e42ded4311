"""Bot processes for the end-to-end tests, forked from one that has already imported the bot.

`python -m bot run` spends about 4 s of CPU importing aiogram's types before it does anything,
and the end-to-end suite starts some eighty bots. This launcher imports the bot once; for each
test it forks a child that runs exactly what `python -m bot run` runs (`bot.__main__.main`),
with the test's environment, working directory and log file. The child is a real process:
tests still kill it with SIGKILL and restart it.

Protocol, one JSON object per line on stdin / stdout:
  {"start": {"env": {...}, "cwd": "...", "log": "..."}}  ->  {"pid": 1234}
  {"status": 1234}                                       ->  {"code": null | exit code}
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys

import bot.app  # noqa: F401  (the import this launcher exists to pay once)
from bot.__main__ import main


def _child(env: dict[str, str], cwd: str, log: str) -> None:
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 1
    try:
        code = main(["run"])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    exited: dict[int, int] = {}
    running: set[int] = set()
    requests = sys.stdin.buffer
    while True:
        for pid in list(running):  # reap, keeping each child's exit code for its test
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                running.discard(pid)
                exited[pid] = os.waitstatus_to_exitcode(status)
        ready, _, _ = select.select([requests], [], [], 0.05)
        if not ready:
            continue
        line = requests.readline()
        if not line:
            return  # the test session ended
        request = json.loads(line)
        if "start" in request:
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(**request["start"])
            running.add(pid)
            reply: dict[str, int | None] = {"pid": pid}
        else:
            pid = request["status"]
            if pid in running:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    running.discard(pid)
                    exited[pid] = os.waitstatus_to_exitcode(status)
            reply = {"code": exited.get(pid)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
