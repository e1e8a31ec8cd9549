"""Run every `bench/bench_*.py` (or the ones named) one after another."""

import runpy
import sys
from pathlib import Path

here = Path(__file__).parent
names = sys.argv[1:] or sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))
for name in names:
    print(f"== {name}", flush=True)
    sys.argv = [f"bench_{name}.py"]
    runpy.run_path(str(here / f"bench_{name}.py"), run_name="__main__")
