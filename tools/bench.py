"""Times the losses against baselines measured in the same run: the cases of tools/bench_cases/.

A name selects a case or every case of a family (a module of ``tools/bench_cases/``);
no name runs them all. Calls are compiled as a training step is (see
``benchmarking.py``; ``--torch-compile`` wraps torch's forward in ``torch.compile``,
minutes of compile time on CPU, instead of eager autograd) and interleaved in a
fresh order each round. ``--set NAME=VALUE`` changes a size of every selected case
that has it (``--list`` shows them); ``--threads`` pins torch's intra-op threads;
``--quick`` runs tiny inputs once, to check that the cases run.

    KERAS_BACKEND=jax python tools/bench.py classification --repetitions 300
    KERAS_BACKEND=torch python tools/bench.py vision --set configs=8x20 --threads 2
"""

import argparse
import importlib
import pathlib
import pkgutil
import sys

TOOLS_DIR = pathlib.Path(__file__).resolve().parent
if str(TOOLS_DIR) not in sys.path:
    sys.path.insert(0, str(TOOLS_DIR))

from benchmarking import Timing, pin_torch_threads  # noqa: E402


def load_cases():
    """Returns ``{family: [Case, ...]}`` from the modules of ``tools/bench_cases/``."""
    modules = pkgutil.iter_modules([str(TOOLS_DIR / "bench_cases")])
    return {
        module.name: importlib.import_module(f"bench_cases.{module.name}").CASES
        for module in sorted(modules, key=lambda module: module.name)
    }


def select_cases(families, names):
    """The cases ``names`` select, in order and each once; every case when empty.

    Raises:
        ValueError: When a name is neither a case nor a family.
    """
    by_name = {case.name: case for cases in families.values() for case in cases}
    selected = {}
    for name in names or list(by_name):
        family = name.replace("-", "_")
        if name in by_name:
            selected[name] = by_name[name]
        elif family in families:
            selected.update((case.name, case) for case in families[family])
        else:
            raise ValueError(
                f"unknown case or family {name!r}; cases: {', '.join(by_name)}; "
                f"families: {', '.join(families)}"
            )
    return list(selected.values())


def case_params(case, settings, quick):
    """The case's sizes: its defaults, then ``--quick``'s, then the ``--set`` ones it has."""
    params = {**case.params, **(case.quick if quick else {})}
    for name, value in settings.items():
        if name in params:
            kind = type(case.params[name])
            try:
                params[name] = kind(value)
            except ValueError:
                message = f"{name}={value!r}: {case.name} takes an {kind.__name__}"
                raise ValueError(message) from None
    return params


def name_and_value(pair):
    """``"batch=8"`` as ``("batch", "8")``, the type of ``--set``."""
    name, separator, value = pair.partition("=")
    if not separator:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {pair!r}")
    return name, value


def check_settings(settings, cases):
    """Raises ValueError for a ``--set`` name that no selected case has."""
    for name in settings:
        if not any(name in case.params for case in cases):
            known = sorted({param for case in cases for param in case.params})
            raise ValueError(f"no selected case has a size {name!r}; they have: {known}")


def print_case_list(families):
    for family, cases in families.items():
        for case in cases:
            sizes = " ".join(f"{name}={value}" for name, value in case.params.items())
            print(f"{case.name:<16}{family:<17}{case.summary}")
            print(f"{'':<33}{sizes}; repetitions={case.repetitions}, warmup={case.warmup}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="CASE|FAMILY")
    parser.add_argument("--list", action="store_true", help="list the cases and their sizes")
    parser.add_argument(
        "--set", action="append", default=[], type=name_and_value, metavar="NAME=VALUE"
    )
    parser.add_argument(
        "--repetitions", type=int, metavar="N", help="timed rounds, per case when omitted"
    )
    parser.add_argument(
        "--warmup", type=int, metavar="N", help="untimed calls, per case when omitted"
    )
    parser.add_argument("--quick", action="store_true", help="tiny inputs, one round")
    parser.add_argument("--torch-compile", action="store_true")
    parser.add_argument("--threads", type=int, metavar="N", help="torch intra-op threads")
    arguments = parser.parse_args(argv)

    families = load_cases()
    if arguments.list:
        print_case_list(families)
        return 0
    settings = dict(arguments.set)
    try:
        cases = select_cases(families, arguments.names)
        check_settings(settings, cases)
        plans = [(case, case_params(case, settings, arguments.quick)) for case in cases]
    except ValueError as error:
        parser.error(str(error))
    pin_torch_threads(arguments.threads)
    for index, (case, params) in enumerate(plans):
        repetitions, warmup = (1, 1) if arguments.quick else (case.repetitions, case.warmup)
        timing = Timing(
            repetitions=repetitions if arguments.repetitions is None else arguments.repetitions,
            warmup=warmup if arguments.warmup is None else arguments.warmup,
            torch_compile=arguments.torch_compile,
        )
        if index:
            print()
        print(f"== {case.name}: {case.summary}")
        case.run(params, timing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
