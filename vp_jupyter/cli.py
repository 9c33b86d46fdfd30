"""The `vp-jupyter` command line: run a case file (or the packaged example) and print, save or report it.

    vp-jupyter run CASE.json              one line per case: steps, final status, dilution, depth, distance
    vp-jupyter run --example              the same for the example case shipped with the package
    vp-jupyter run CASE.json --json out.json   (or --json - for stdout) the full result as JSON
    vp-jupyter run CASE.json --report          the Visual Plumes style text report
    vp-jupyter run CASE.json --no-store        do not record the run in the archive store
    vp-jupyter run PROJECT.json --file effluent_flow=flow.csv   a project saved by the web UI, with the CSV
                                          of each time series it takes from a file
    vp-jupyter convert PROJECT.json CASE.json  a saved web-UI project (or a case) written in the case format
    vp-jupyter store reindex [--store PATH]    rebuild the archive store's index from its run folders
    vp-jupyter report RUN_ID -o report.html    the self-contained HTML report of a stored run or study
    vp-jupyter report CASE.json -o report.html [--pdf report.pdf]   run the case (recorded) and report it

Every run is recorded in the archive store ($VP_JUPYTER_STORE, else <jupyter data dir>/vp_jupyter/runs) with
source `cli`, and its run id is printed on standard error (`vp.load(id)` brings it back in Python).

Exit status: 0 on success, 2 for invalid input (every problem printed to stderr, no traceback).
Imports stay lazy: pandas is never needed here, so start-up is quick.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXAMPLE_NAME = "stratified_outfall.json"
STDOUT = "-"
RUN_ID_PREFIX = "run id: "      # the stderr line that names the recorded run


def example_case_path() -> Path:
    """Path of the example case JSON that ships with the package."""
    return Path(__file__).resolve().parent / "examples" / EXAMPLE_NAME


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vp-jupyter",
                                     description="Visual Plumes UM3 effluent-plume model.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a case file and summarise every case",
                              description="Run a case JSON file (see README, 'Case format').")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("case", nargs="?", help="path of the case JSON file")
    source.add_argument("--example", action="store_true",
                        help=f"run the example case shipped with the package ({EXAMPLE_NAME})")
    run.add_argument("--json", nargs="?", const=STDOUT, metavar="FILE",
                     help="write the full result as JSON to FILE ('-' or no FILE: standard output)")
    run.add_argument("--report", nargs="?", const=STDOUT, metavar="FILE",
                     help="write the Visual Plumes text report to FILE ('-' or no FILE: standard output)")
    _add_file_option(run)
    run.add_argument("--no-store", action="store_true",
                     help="do not record the run in the archive store (by default it is recorded with source "
                          "'cli' in $VP_JUPYTER_STORE, else <jupyter data dir>/vp_jupyter/runs, and its id "
                          "is printed on standard error)")
    convert = commands.add_parser(
        "convert", help="write a saved web-UI project (or a case) in the case format",
        description="Read a project the Visual Plumes web UI saved ('Save Project Config'), or a case file, and "
                    "write it as a validated case in the case format (time series inline).")
    convert.add_argument("source", help="path of the project (or case) JSON file")
    convert.add_argument("output", nargs="?", default=STDOUT,
                         help="path of the case JSON to write ('-' or none: standard output)")
    _add_file_option(convert)

    store = commands.add_parser("store", help="look after the archive store",
                                description="Look after the archive store (its run folders and their index).")
    store_commands = store.add_subparsers(dest="store_command", required=True)
    reindex = store_commands.add_parser(
        "reindex", help="rebuild the index of the run folders",
        description="Rebuild the store's index (.index.sqlite3) from its run folders: after runs were copied in "
                    "or removed by hand, or when listings look wrong. Safe while a server uses the store.")
    reindex.add_argument("--store", metavar="PATH",
                         help="the store's folder (default: $VP_JUPYTER_STORE, else <jupyter data dir>/vp_jupyter/runs)")

    report = commands.add_parser("report", help="write the HTML report of a stored run or study, or of a case file",
                                 description="Write one self-contained HTML report (inputs with units, summary, "
                                             "plots, the Visual Plumes text report, memos, deviations, provenance).")
    report.add_argument("source", help="a run id of the archive store, or a case JSON file (run and recorded first)")
    report.add_argument("-o", "--output", default="report.html", metavar="FILE",
                        help="the HTML file to write (default: report.html)")
    report.add_argument("--pdf", metavar="FILE", help="also print the report to this PDF file (needs Chromium)")
    report.add_argument("--no-store", action="store_true", help="a case file: do not record its run")
    return parser


def _add_file_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--file", action="append", default=[], metavar="NAME=PATH",
                         help="a saved web-UI project only: the CSV file of the time series NAME (as the web UI "
                              "names it, e.g. effluent_flow or current_speed); repeat for each series")


def _files(pairs: Sequence[str]) -> "dict[str, str] | None":
    """The --file NAME=PATH options as a dict (ValueError naming a malformed one)."""
    files = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"--file {pair}: expected NAME=PATH, e.g. --file effluent_flow=flow.csv")
        files[name.strip()] = path.strip()
    return files or None


def _load_failed(error: Exception, source: Any) -> int:
    """Print a CaseError's problems (or a ValueError's text) and return the bad-input exit status."""
    print(f"vp-jupyter: invalid case {source}:", file=sys.stderr)
    for problem in getattr(error, "problems", None) or [str(error)]:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_BAD_INPUT


def store_command(args: argparse.Namespace) -> int:
    """`vp-jupyter store reindex`: returns the exit status."""
    from .store import RunStore

    store = RunStore(args.store)
    if not store.root.is_dir():
        print(f"vp-jupyter: no archive store at {store.root}", file=sys.stderr)
        return EXIT_BAD_INPUT
    count = store.reindex()
    print(f"indexed {count} run(s) in {store.root}")
    return EXIT_OK


def _write(text: str, target: str) -> None:
    if target == STDOUT:
        sys.stdout.write(text)
    else:
        Path(target).write_text(text, encoding="utf-8")


def run_command(args: argparse.Namespace) -> int:
    """`vp-jupyter run`: returns the exit status."""
    if args.json == STDOUT and args.report == STDOUT:
        print("vp-jupyter: error: --json and --report cannot both write to standard output; "
              "give one of them a FILE", file=sys.stderr)
        return EXIT_BAD_INPUT

    import warnings

    import vp_jupyter as vp
    from .inputs import CaseError

    source = example_case_path() if args.example else Path(args.case)
    try:
        files = _files(args.file)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            result = vp.run(source, store=not args.no_store, source_label="cli", files=files)
    except (CaseError, ValueError) as error:
        return _load_failed(error, source)
    except OSError as error:
        print(f"vp-jupyter: cannot read {source}: {error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT

    # standard output carries one document: the JSON, the report, or else the per-case lines
    summary_stream = sys.stderr if STDOUT in (args.json, args.report) else sys.stdout
    for line in result.case_lines():
        print(line, file=summary_stream)
    for warning in caught:          # e.g. the archive store could not be written: the run still succeeded
        print(f"vp-jupyter: warning: {warning.message}", file=sys.stderr)
    if result.run_id is not None:
        print(f"{RUN_ID_PREFIX}{result.run_id}", file=sys.stderr)
    if args.json is not None:
        _write(result.to_json(indent=1) + "\n", args.json)
    if args.report is not None:
        _write(result.text_report(), args.report)
    return EXIT_OK


def convert_command(args: argparse.Namespace) -> int:
    """`vp-jupyter convert`: returns the exit status."""
    import json

    from .inputs import Case, CaseError

    try:
        case = Case.load(Path(args.source), files=_files(args.file))
    except (CaseError, ValueError) as error:
        return _load_failed(error, args.source)
    _write(json.dumps(case.to_dict(inline_files=True), indent=1, ensure_ascii=False) + "\n", args.output)
    if args.output != STDOUT:
        count = len(case.case_times)
        print(f"wrote {args.output}: case {case.name!r}, {count} case{'s' if count != 1 else ''}", file=sys.stderr)
    return EXIT_OK


def report_command(args: argparse.Namespace) -> int:
    """`vp-jupyter report`: returns the exit status."""
    import vp_jupyter as vp
    from .inputs import CaseError
    from .store import RUN_ID_PATTERN, RunNotFound

    try:
        if RUN_ID_PATTERN.fullmatch(args.source):
            subject = vp.load(args.source)
        else:
            subject = vp.run(Path(args.source), store=not args.no_store, source_label="cli")
            if subject.run_id is not None:
                print(f"{RUN_ID_PREFIX}{subject.run_id}", file=sys.stderr)
        subject.report(args.output, pdf=args.pdf)
    except CaseError as error:
        return _load_failed(error, args.source)
    except RunNotFound as error:
        print(f"vp-jupyter: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"vp-jupyter: {error.filename or args.source}: {error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RuntimeError as error:       # no Chromium for --pdf
        print(f"vp-jupyter: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"report: {args.output}" + (f", {args.pdf}" if args.pdf else ""), file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return run_command(args)
    if args.command == "convert":
        return convert_command(args)
    if args.command == "store":
        return store_command(args)
    if args.command == "report":
        return report_command(args)
    return EXIT_BAD_INPUT  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
