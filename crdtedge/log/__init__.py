"""The compacted binary update log: every change lands here before anything else."""

from .committer import GroupCommitter
from .format import (
    CorruptLogError,
    LogError,
    RecordKind,
    UnsupportedFormatError,
)
from .state import BadUpdateError
from .store import LogInUseError, LogStore
from .updatelog import (
    ClosedLogError,
    CompactionPolicy,
    CompactionResult,
    Durability,
    LogStats,
    Recovery,
    UpdateLog,
)

__all__ = [
    "BadUpdateError",
    "ClosedLogError",
    "CompactionPolicy",
    "CompactionResult",
    "CorruptLogError",
    "Durability",
    "GroupCommitter",
    "LogError",
    "LogInUseError",
    "LogStats",
    "LogStore",
    "RecordKind",
    "Recovery",
    "UnsupportedFormatError",
    "UpdateLog",
]
