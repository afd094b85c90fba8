"""The streams mepd publishes to: created with the configured settings when missing, checked when present.

An existing stream whose settings differ (other replicas, subjects or duplicate
window) is not changed behind its owner's back: `StreamMismatchError` says what
differs, and the component waits in that state until someone fixes one side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from mepd.config import FleetConfig
from mepd.errors import MepdError


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    kind: str  # the `publish` entry it carries
    per_subject: int = -1  # messages kept per subject (-1: all)

    @property
    def subjects(self) -> list[str]:
        return [f"mepd.{self.kind}.*"]

    def subject(self, node: str) -> str:
        return f"mepd.{self.kind}.{node}"


LOGS: Final = Stream("MEPD_LOGS", "logs")
EVENTS: Final = Stream("MEPD_EVENTS", "incidents")
METRICS: Final = Stream("MEPD_METRICS", "metrics")
HEARTBEATS: Final = Stream("MEPD_HEARTBEATS", "heartbeat", per_subject=1)  # each node's latest
STREAMS: Final = (LOGS, EVENTS, METRICS, HEARTBEATS)


class StreamMismatchError(MepdError):
    """A stream exists with settings other than the config's."""


async def ensure(js: JetStreamContext, stream: Stream, cfg: FleetConfig) -> None:
    """Create `stream` if missing; raise StreamMismatchError if it exists with other settings."""
    try:
        info = await js.stream_info(stream.name)
    except NotFoundError:
        await js.add_stream(StreamConfig(
            name=stream.name, subjects=stream.subjects, num_replicas=cfg.replicas, storage=StorageType.FILE,
            duplicate_window=cfg.duplicate_window, max_age=cfg.max_age, discard=DiscardPolicy.OLD,
            max_msgs_per_subject=stream.per_subject,
        ))
        return
    have = info.config
    wanted = {"subjects": stream.subjects, "replicas": cfg.replicas, "duplicate_window": cfg.duplicate_window}
    actual = {"subjects": sorted(have.subjects or []), "replicas": have.num_replicas or 1,
              "duplicate_window": have.duplicate_window}
    differ = [f"{key} {actual[key]!r} (the config says {value!r})" for key, value in wanted.items()
              if actual[key] != value]
    if differ:
        raise StreamMismatchError(f"stream {stream.name} exists with other settings: {', '.join(differ)};"
                                  " change the stream (nats stream edit) or [fleet], mepd leaves it as it is")
