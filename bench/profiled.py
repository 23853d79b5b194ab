"""Run a module under cProfile and write the profile when it stops, SIGTERM included:
`python -m bench.profiled OUT.prof MODULE ARGS...` (bench/ingest.py uses it for the
Liaison servers when BENCH_PROFILE_DIR is set). `python -m cProfile` writes nothing when
the process ends by a signal, and uvicorn re-raises SIGTERM after its graceful shutdown.
Only the main thread is profiled (aiosqlite's thread is not)."""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys


def main() -> None:
    out, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    # uvicorn restores this handler after its shutdown and raises the signal again.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    profile = cProfile.Profile()
    profile.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    finally:
        profile.disable()
        profile.dump_stats(out)


if __name__ == "__main__":
    main()
