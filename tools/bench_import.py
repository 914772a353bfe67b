"""Measures what ``import dl_techniques.losses`` costs on top of ``import keras``.

Each sample is a fresh interpreter that imports keras, then the package, and
reports both times; the script prints the medians over the samples.

    KERAS_BACKEND=jax python tools/bench_import.py --samples 7
"""

import argparse
import json
import statistics
import subprocess
import sys

PROBE = """
import json, sys, time
started = time.perf_counter()
import keras
keras_done = time.perf_counter()
import dl_techniques.losses
package_done = time.perf_counter()
families = sorted(
    name for name in sys.modules
    if name.startswith("dl_techniques.losses.") and not name.startswith("dl_techniques.losses.core")
)
timings = {"keras": keras_done - started, "package": package_done - keras_done}
print(json.dumps({**timings, "families": families}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=7)
    arguments = parser.parse_args()
    samples = []
    for _ in range(arguments.samples):
        output = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
        )
        samples.append(json.loads(output.stdout.strip().splitlines()[-1]))
    keras_ms = statistics.median(sample["keras"] for sample in samples) * 1000
    package_ms = statistics.median(sample["package"] for sample in samples) * 1000
    print(f"import keras:                      {keras_ms:8.1f} ms (median of {len(samples)})")
    print(f"import dl_techniques.losses after: {package_ms:8.1f} ms (target < 50 ms)")
    print(f"family modules imported:           {samples[-1]['families'] or 'none'}")
    return 0 if package_ms < 50 and not samples[-1]["families"] else 1


if __name__ == "__main__":
    sys.exit(main())
