"""Server options: command-line flags, each also settable as a CRDTEDGE_* variable."""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration that cannot run: one line saying what to change."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    data_dir: Path = Path("./data")
    durability: str = "group"
    max_message_bytes: int = 16 * 1024 * 1024
    max_buffered_bytes: int = 8 * 1024 * 1024
    idle_unload_seconds: float = 30.0
    max_open_logs: int = 1024
    auth_secret: str | None = None
    auth_public_key: Path | None = None
    insecure: bool = False
    compression: bool = False
    log_level: str = "info"

    @property
    def auth_enabled(self) -> bool:
        return self.auth_secret is not None or self.auth_public_key is not None

    def check(self) -> None:
        if not self.auth_enabled and not _is_loopback(self.host) and not self.insecure:
            raise ConfigError(
                f"refusing to serve {self.host} without auth: set --auth-secret or "
                "--auth-public-key, or pass --insecure if this network is trusted"
            )


# (flag, dest, type, help); the environment variable is CRDTEDGE_<DEST upper-cased>.
_OPTIONS: list[tuple[str, str, type, str]] = [
    ("--host", "host", str, "address to bind"),
    ("--port", "port", int, "port for websockets and HTTP (/healthz, /metrics)"),
    ("--data-dir", "data_dir", Path, "directory of the room update logs"),
    ("--durability", "durability", str, "log durability: always, group or none"),
    ("--max-message-bytes", "max_message_bytes", int, "larger frames close the peer (1009)"),
    (
        "--max-buffered-bytes",
        "max_buffered_bytes",
        int,
        "a peer with more unsent bytes is disconnected as a slow consumer (1013)",
    ),
    (
        "--idle-unload-seconds",
        "idle_unload_seconds",
        float,
        "unload a room this long after its last peer leaves",
    ),
    ("--max-open-logs", "max_open_logs", int, "open log files kept cached"),
    ("--auth-secret", "auth_secret", str, "HS256 secret: enables token auth"),
    (
        "--auth-public-key",
        "auth_public_key",
        Path,
        "PEM file of an Ed25519 public key: enables EdDSA token auth",
    ),
    ("--log-level", "log_level", str, "debug, info, warning or error"),
]


def build_parser() -> argparse.ArgumentParser:
    defaults = ServerConfig()
    parser = argparse.ArgumentParser(
        prog="crdtedge serve",
        description="Run the crdtedge relay: y-websocket compatible, every room durable in "
        "its update log. Every option can also be set as an environment variable.",
    )
    for flag, dest, kind, text in _OPTIONS:
        env = "CRDTEDGE_" + dest.upper()
        default = getattr(defaults, dest)
        parser.add_argument(
            flag,
            dest=dest,
            type=kind,
            default=os.environ.get(env, default),
            help=f"{text} [env {env}, default {default}]",
        )
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=os.environ.get("CRDTEDGE_INSECURE") == "1",
        help="allow serving a non-loopback address without auth [env CRDTEDGE_INSECURE=1]",
    )
    parser.add_argument(
        "--compression",
        action="store_true",
        default=os.environ.get("CRDTEDGE_COMPRESSION") == "1",
        help="offer permessage-deflate (costs CPU per peer) [env CRDTEDGE_COMPRESSION=1]",
    )
    return parser


def parse(argv: Sequence[str] | None = None) -> ServerConfig:
    args = build_parser().parse_args(argv)
    values = vars(args)
    try:
        options: dict[str, Any] = {
            name: (kind(values[name]) if values[name] is not None else None)
            for _, name, kind, _ in _OPTIONS
        }
        config = ServerConfig(
            **options, insecure=values["insecure"], compression=values["compression"]
        )
    except ValueError as exc:
        raise ConfigError(f"bad option value: {exc}") from None
    if config.durability not in ("always", "group", "none"):
        raise ConfigError(f"--durability must be always, group or none, not {config.durability}")
    config.check()
    return config


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
