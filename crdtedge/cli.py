"""The `crdtedge` command line: inspect, compact, export and salvage update logs.

User errors (missing files, corrupt logs, bad arguments) print one line and exit non-zero;
a traceback means a bug in crdtedge.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import orjson

from .content import to_python
from .log import LogError, UpdateLog
from .log.files import read_file
from .log.format import RecordKind, scan
from .log.salvage import salvage
from .log.state import state_of

EXIT_ERROR = 1
EXIT_CORRUPT = 3  # inspect found damage


class Progress:
    """A one-line progress bar on a terminal; silent when not enabled."""

    def __init__(self, label: str, stream: TextIO, enabled: bool) -> None:
        self.label = label
        self.stream = stream
        self.enabled = enabled
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if not self.enabled or percent == self._shown:
            return
        self._shown = percent
        bar = "#" * (percent // 4) + "." * (25 - percent // 4)
        end = "\n" if done >= total else ""
        self.stream.write(f"\r{self.label} [{bar}] {percent:3d}% {done}/{total}{end}")
        self.stream.flush()


def _existing(path: str) -> str:
    if not os.path.isfile(path):
        raise LogError(f"{path}: no such log file")
    return path


def cmd_inspect(args: argparse.Namespace, out: TextIO) -> int:
    path = _existing(args.file)
    data = read_file(path)
    scanned, damage = scan(data, path, stop_at_damage=True)
    sizes: dict[str, int] = {kind.name.lower(): 0 for kind in RecordKind}
    sizes["update"] = sum(map(len, scanned.updates))
    for record in scanned.others:
        sizes[record.kind.name.lower()] += len(record.payload)
    counts = {kind.name.lower(): n for kind, n in scanned.counts().items()}
    metadata = [orjson.loads(r.payload) for r in scanned.of_kind(RecordKind.METADATA)]
    if damage:
        status = f"CORRUPT: {damage}"
    elif scanned.torn_bytes:
        status = f"torn tail: {scanned.torn_bytes} bytes after offset {scanned.end}"
    else:
        status = "ok"
    report: dict[str, Any] = {
        "file": path,
        "format_version": scanned.header.version,
        "doc_id": str(scanned.header.doc_id),
        "generation": scanned.header.generation,
        "file_bytes": scanned.file_size,
        "records": counts,
        "payload_bytes": sizes,
        "checksums": status,
        "last_good_offset": scanned.end,
        "metadata": metadata,
    }
    if args.json:
        out.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        width = max(map(len, report))
        for key, value in report.items():
            if key == "metadata":
                for meta in value:
                    out.write(f"{'metadata':<{width}}  {orjson.dumps(meta).decode()}\n")
                continue
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            out.write(f"{key:<{width}}  {value}\n")
    return EXIT_CORRUPT if damage else 0


def cmd_compact(args: argparse.Namespace, out: TextIO) -> int:
    path = _existing(args.file)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    with UpdateLog(path, durability="always", auto_compact=False) as log:
        if log.recovery is not None:
            out.write(f"dropped a torn tail of {log.recovery.dropped_bytes} bytes\n")
        result = log.compact(progress=Progress("compacting", sys.stderr, show))
    out.write(
        f"{path}: folded {result.updates_folded} updates, "
        f"{result.bytes_before} -> {result.bytes_after} bytes "
        f"(state {result.state_bytes} bytes, snapshot {result.snapshot_bytes} bytes "
        f"compressed) in {result.seconds:.2f} s\n"
    )
    return 0


def cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    """Read-only: a torn tail is skipped (and reported), never truncated."""
    path = _existing(args.file)
    scanned, _ = scan(read_file(path), path)
    if scanned.torn_bytes:
        sys.stderr.write(f"{path}: ignoring a torn tail of {scanned.torn_bytes} bytes\n")
    content = to_python(state_of(scanned, path))
    option = orjson.OPT_INDENT_2 if args.indent else 0
    text = orjson.dumps(content, option=option).decode() + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        out.write(text)
    return 0


def cmd_salvage(args: argparse.Namespace, out: TextIO) -> int:
    path = _existing(args.file)
    report = salvage(path, args.output)
    what = report.damage or "no damage found"
    out.write(
        f"{report.output}: kept {report.records_kept} records ({report.bytes_kept} bytes), "
        f"dropped {report.bytes_dropped} bytes; {what}\n"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crdtedge", description="crdtedge: offline-first CRDT state for edge nodes."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "serve", help="run the relay server (`crdtedge serve --help` lists its options)"
    )
    log = commands.add_parser("log", help="inspect and maintain update log files")
    log_commands = log.add_subparsers(dest="log_command", required=True, metavar="ACTION")

    inspect = log_commands.add_parser(
        "inspect", help="header, record counts and sizes, checksum status (read-only)"
    )
    inspect.add_argument("file", help="path of a .ylog file")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    inspect.set_defaults(run=cmd_inspect)

    compact = log_commands.add_parser(
        "compact", help="fold every record into one compressed snapshot"
    )
    compact.add_argument("file", help="path of a .ylog file (must not be open elsewhere)")
    compact.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    compact.set_defaults(run=cmd_compact)

    export = log_commands.add_parser("export", help="document content as JSON (read-only)")
    export.add_argument("file", help="path of a .ylog file")
    export.add_argument("-o", "--output", help="write to this file instead of stdout")
    export.add_argument("--indent", action="store_true", help="pretty-print")
    export.set_defaults(run=cmd_export)

    salvage_cmd = log_commands.add_parser(
        "salvage",
        help="rebuild a corrupt log from the records before the damage",
        description="Keep every verified record before the first damage. Without --output "
        "the log is rewritten in place and the damaged original kept beside it as "
        "FILE.damaged-<time>.",
    )
    salvage_cmd.add_argument("file", help="path of a .ylog file (must not be open elsewhere)")
    salvage_cmd.add_argument("-o", "--output", help="write the salvaged log here instead")
    salvage_cmd.set_defaults(run=cmd_salvage)
    return parser


def serve(argv: Sequence[str]) -> int:
    """`crdtedge serve` lives in the crdtedge-server distribution (heavier dependencies)."""
    try:
        server_cli = importlib.import_module("crdtedge_server.cli")
    except ImportError:
        sys.stderr.write(
            "crdtedge: error: `serve` needs the server package: pip install ./server "
            "(from the crdtedge source tree), or run scripts/serve.sh\n"
        )
        return EXIT_ERROR
    serve_main: Callable[[Sequence[str]], int] = server_cli.main
    return serve_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace, TextIO], int] = args.run
    started = time.monotonic()
    try:
        return run(args, sys.stdout)
    except (LogError, OSError, ValueError) as exc:
        sys.stderr.write(f"crdtedge: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(f"crdtedge: interrupted after {time.monotonic() - started:.1f} s\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
