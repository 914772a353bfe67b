"""The ``dl-losses`` command: list, describe, check, demo and plot installed losses."""

import argparse
import ast
import importlib.metadata
import inspect
import pathlib
import sys
import tempfile

from dl_techniques.losses.core import registry

CONFORMANCE_ENTRY_POINT_GROUP = "dl_techniques.losses.conformance"


def _table(header, rows):
    widths = [
        max(len(str(line[column])) for line in [header, *rows]) for column in range(len(header))
    ]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _list(arguments):
    found = registry.entries(include_shadowed=True)
    winners = {entry.name: entry for entry in registry.entries()}
    rows = []
    for entry in found:
        name = entry.name if winners[entry.name] is entry else f"{entry.qualified_name} (shadowed)"
        rows.append((name, entry.kind, entry.family, entry.distribution, entry.version))
    if not rows:
        print("No dl_techniques.losses plugins are installed.")
        return 0
    print(_table(("name", "kind", "family", "distribution", "version"), rows))
    return 0


def _docstring_section(doc, heading):
    lines = inspect.cleandoc(doc or "").splitlines()
    collected: list[str] = []
    inside = False
    for line in lines:
        stripped = line.strip()
        if stripped.rstrip(":").lower() in (heading, heading + "s"):
            inside = True
            continue
        if inside:
            if not stripped:
                if collected:
                    break
                continue
            if stripped.endswith(":") and not line.startswith((" ", "\t")):
                break
            collected.append(stripped)
    return " ".join(collected)


def _info(arguments):
    entry = registry.entry(arguments.name)
    obj = entry.load()
    target = obj.__init__ if inspect.isclass(obj) else obj
    signature = inspect.signature(target)
    if inspect.isclass(obj):
        parameters = [p for p in signature.parameters.values() if p.name != "self"]
        signature = signature.replace(parameters=parameters)
    doc = inspect.getdoc(obj) or ""
    summary = doc.splitlines()[0] if doc else "(no docstring)"
    print(f"{entry.name}{signature}")
    print(f"  kind:         {entry.kind}")
    print(f"  family:       {entry.family}")
    print(f"  distribution: {entry.distribution} {entry.version}")
    print(f"  object:       {entry.value}")
    print(f"  keras name:   {entry.keras_name}")
    print(f"  summary:      {summary}")
    print(f"  reference:    {_docstring_section(doc, 'reference') or '(none given)'}")
    return 0


def _conformance_providers():
    providers = importlib.metadata.entry_points(group=CONFORMANCE_ENTRY_POINT_GROUP)
    return sorted(
        providers,
        key=lambda provider: (
            provider.dist.metadata["Name"] if provider.dist else "",
            provider.name,
        ),
    )


def _selected_cases(targets):
    """Returns the conformance cases matching distributions or loss names."""
    cases, problems = [], []
    requested = set(targets)
    matched = set()
    for provider in _conformance_providers():
        distribution = provider.dist.metadata["Name"] if provider.dist else "unknown"
        try:
            provided = list(provider.load()())
        except Exception as error:
            problems.append(
                (distribution, f"conformance cases failed to load: {type(error).__name__}: {error}")
            )
            continue
        for case in provided:
            names = {distribution, case.loss_class.__name__, case.case_id}
            if not requested or names & requested:
                cases.append(case)
                matched |= names & requested
    installed = {entry.distribution for entry in registry.entries(include_shadowed=True)}
    for target in sorted(requested - matched):
        if target in installed:
            problems.append((target, "distribution declares no conformance cases"))
        else:
            problems.append(
                (target, "no installed distribution or loss with conformance cases has this name")
            )
    return cases, problems


def _check(arguments):
    cases, problems = _selected_cases(arguments.targets)
    rows = [(target, "-", "FAIL", message) for target, message in problems]
    if cases:
        from dl_techniques.losses.core import testing

        with tempfile.TemporaryDirectory(prefix="dl-losses-check-") as work_dir:
            results = testing.run_conformance_batch(cases, pathlib.Path(work_dir))
        for result in results:
            message = "" if result.passed else result.message.splitlines()[0][:120]
            rows.append(
                (result.case_id, result.check, "pass" if result.passed else "FAIL", message)
            )
    if not rows:
        print("No conformance cases found.")
        return 1
    print(_table(("case", "check", "result", "detail"), rows))
    failed = sum(1 for row in rows if row[2] == "FAIL")
    print(f"\n{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _demo(arguments):
    from dl_techniques.losses.core import demo

    if not demo.demo_entries():
        print(
            "No demos are installed. Install a family, e.g. "
            'pip install "dl-techniques-losses[forecasting]".'
        )
        return 1
    rows, failures = demo.run_demos(arguments.output, selected=arguments.names)
    print()
    print(demo.format_table(rows))
    print(f"\nPlots written to {pathlib.Path(arguments.output).resolve()}")
    for name, message in failures:
        print(f"demo {name} FAILED: {message}", file=sys.stderr)
    return 1 if failures else 0


def _parse_param(text):
    key, separator, literal = text.partition("=")
    if not separator or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    words = {"true": True, "false": False, "none": None}
    if literal.strip().lower() in words:
        return key.strip(), words[literal.strip().lower()]
    try:
        return key.strip(), ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return key.strip(), literal


def _number(value):
    return f"{value:.4g}"


def _plot(arguments):
    from dl_techniques.losses.core import plotting

    params = {}
    for key, value in arguments.param:
        if key in params:
            print(f"dl-losses plot: --param {key} is given twice.", file=sys.stderr)
            return 2
        params[key] = value
    points = arguments.points if arguments.points is not None else 11 if arguments.table else 101
    try:
        curves = plotting.loss_curves(arguments.name, params, points, arguments.x_range)
    except plotting.PlotError as error:
        print(f"dl-losses plot: {error}", file=sys.stderr)
        return 2
    print(
        f"{curves.title}: {curves.kind} axis, {len(curves.x)} points of {curves.x_symbol} in "
        f"[{_number(curves.x[0])}, {_number(curves.x[-1])}]"
    )
    print(f"inputs: {curves.inputs}")
    if arguments.table:
        print(_points_table(curves))
        return 0
    output = pathlib.Path(arguments.output or f"{curves.name}.png")
    output.parent.mkdir(parents=True, exist_ok=True)
    plotting.save_plot(curves, output)
    rows = []
    for curve in curves.curves:
        values, slopes = curve.values, curve.gradients
        extremes = (values.min(), values.max(), slopes.min(), slopes.max())
        rows.append((curve.name, *map(_number, extremes)))
    print(_table(("curve", "value min", "value max", "gradient min", "gradient max"), rows))
    print(f"wrote {output}")
    return 0


def _points_table(curves):
    """The sampled points: x, each loss curve's value and gradient, each reference's value."""
    columns = [(curves.x_symbol, curves.x)]
    for curve in curves.curves:
        columns.append((curve.key, curve.values))
        if not curve.reference:
            columns.append(("d" + curve.key, curve.gradients))
    header = [name for name, _ in columns]
    rows = [[_number(values[index]) for _, values in columns] for index in range(len(curves.x))]
    return _table(header, rows)


def build_parser():
    """Returns the argument parser of ``dl-losses``."""
    parser = argparse.ArgumentParser(prog="dl-losses", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "list", help="every installed entry: name, kind, family, distribution, version"
    ).set_defaults(run=_list)
    info = commands.add_parser("info", help="signature, summary and reference of one entry")
    info.add_argument("name", help='public name, or qualified "distribution:Name"')
    info.set_defaults(run=_info)
    check = commands.add_parser("check", help="run the conformance kit on installed plugins")
    check.add_argument(
        "targets",
        nargs="*",
        metavar="DIST|NAME",
        help="distributions or loss names (all when omitted)",
    )
    check.set_defaults(run=_check)
    demo = commands.add_parser(
        "demo", help="train small models with the installed families' losses"
    )
    demo.add_argument("names", nargs="*", help="demos to run (all installed ones when omitted)")
    demo.add_argument(
        "--output", default="demo-output", help="folder for the PNG plots (default: demo-output)"
    )
    demo.set_defaults(run=_demo)
    plot = commands.add_parser(
        "plot",
        help="value and gradient of a loss against its prediction, beside a reference",
        description="Draws a loss's value and gradient against the prediction on the axis of "
        "its kind (error, probability, logit or cosine similarity) beside a reference curve "
        "(squared and absolute error, binary cross-entropy, cosine distance).",
    )
    plot.add_argument("name", help='public name, or qualified "distribution:Name"')
    plot.add_argument(
        "--param",
        action="append",
        default=[],
        type=_parse_param,
        metavar="KEY=VALUE",
        help="a constructor argument as a Python literal, repeatable "
        "(--param delta=0.5 --param quantiles=[0.1,0.9])",
    )
    plot.add_argument("--output", help="the PNG to write (default: NAME.png here)")
    plot.add_argument(
        "--table",
        action="store_true",
        help="print the sampled points instead of writing a PNG (needs no matplotlib)",
    )
    plot.add_argument("--points", type=int, help="grid points (default: 101, or 11 with --table)")
    plot.add_argument(
        "--range",
        dest="x_range",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        help="the x range (default: the kind's, e.g. -3 3 for an error)",
    )
    plot.set_defaults(run=_plot)
    return parser


def main(argv=None):
    """Runs ``dl-losses``; returns the exit status."""
    arguments = build_parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except (KeyError, ImportError) as error:
        message = error.args[0] if error.args else str(error)
        print(f"dl-losses: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
