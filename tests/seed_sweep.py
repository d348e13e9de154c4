"""Hunt for flaky tolerances: run every randomized test over many seeds.

Every test that takes the ``rng`` fixture runs ``--seeds`` times, each round
on its own seed derived from one base seed (``POLYLOSS_SEEDS``, see
``tests/conftest.py``); the base is random unless ``--base`` replays one. A
failure prints the base and the node id to replay it.

    python tests/seed_sweep.py --seeds 50 --backends numpy
    python tests/seed_sweep.py --seeds 20 --backends torch tests/test_region.py -- -x -k dice

Modules default to every ``tests/test_*.py`` that uses ``rng`` (not the parity
tests, which need the peers installed; name them to include them).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def randomized_modules() -> list[str]:
    return sorted(str(p.relative_to(TESTS.parent)) for p in TESTS.glob("test_*.py") if "rng" in p.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=50, help="rounds per randomized test (default 50)")
    parser.add_argument("--backends", default="numpy", help="POLYLOSS_BACKENDS (default numpy)")
    parser.add_argument("--base", type=int, default=None, help="base seed to replay (default: a random one)")
    parser.add_argument("modules", nargs="*", help="test modules (default: every randomized one)")
    args, pytest_args = parser.parse_known_args(argv)
    base = secrets.randbits(32) if args.base is None else args.base
    env = {**os.environ, "POLYLOSS_BACKENDS": args.backends, "POLYLOSS_SEED": str(base),
           "POLYLOSS_SEEDS": str(args.seeds)}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
               *(args.modules or randomized_modules()), *[a for a in pytest_args if a != "--"]]
    print(f"POLYLOSS_SEED={base} POLYLOSS_SEEDS={args.seeds} POLYLOSS_BACKENDS={args.backends} {' '.join(command)}",
          flush=True)
    return subprocess.call(command, env=env, cwd=TESTS.parent)


if __name__ == "__main__":
    sys.exit(main())
