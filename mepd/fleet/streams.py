"""The streams mepd publishes to: created with the configured settings when missing, checked when present.

An existing stream whose settings differ (other replicas, subjects or duplicate
window) is not changed behind its owner's back: `StreamMismatchError` says what
differs, and the component waits in that state until someone fixes one side.
A server that refuses streams (JetStream not enabled for the account or on the
server, replicas it cannot place) is `StreamRefusedError`, shown and retried
the same way: the node keeps collecting, and publishes once it is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

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


class StreamError(MepdError):
    """A stream mepd cannot use as it is: `state` for the status line, and `retry` seconds until it looks again."""

    state = "stream error"
    retry = 30.0


class StreamMismatchError(StreamError):
    """A stream exists with settings other than the config's."""

    state = "stream mismatch"


class StreamRefusedError(StreamError):
    """The server refuses the stream's API (JetStream off for the account, a cluster without a leader yet)."""

    state = "stream refused"
    retry = 5.0  # a leader election ends in seconds; an account fixed by its admin is seen soon enough


_HINT: Final = ("; enable JetStream on the server (a jetstream {} block) and for the account (nsc edit account"
                " --js-mem-storage -1 --js-disk-storage -1 --js-streams -1 --js-consumer -1)")


def _refused(stream: Stream, e: APIError) -> StreamRefusedError:
    text = e.description or type(e).__name__
    off = isinstance(e, ServiceUnavailableError) and (e.description is None or "not enabled" in e.description)
    hint = _HINT if off else ""
    return StreamRefusedError(f"stream {stream.name}: the server refuses it: {text}"
                              f" (code {e.code}, error {e.err_code}){hint}")


async def ensure(js: JetStreamContext, stream: Stream, cfg: FleetConfig) -> None:
    """Create `stream` if missing; raise StreamMismatchError if it exists with other settings, StreamRefusedError
    if the server will not say or create it."""
    try:
        try:
            info = await js.stream_info(stream.name)
        except NotFoundError:
            await js.add_stream(StreamConfig(
                name=stream.name, subjects=stream.subjects, num_replicas=cfg.replicas, storage=StorageType.FILE,
                duplicate_window=cfg.duplicate_window, max_age=cfg.max_age, discard=DiscardPolicy.OLD,
                max_msgs_per_subject=stream.per_subject,
            ))
            return
    except APIError as e:
        raise _refused(stream, e) from None
    except nats.errors.TimeoutError:
        raise StreamRefusedError(f"stream {stream.name}: the server does not answer JetStream requests (JetStream"
                                 f" off on the server or for this account, or a cluster without a leader){_HINT}")\
            from None
    have = info.config
    wanted = {"subjects": stream.subjects, "replicas": cfg.replicas, "duplicate_window": cfg.duplicate_window}
    actual = {"subjects": sorted(have.subjects or []), "replicas": have.num_replicas or 1,
              "duplicate_window": have.duplicate_window}
    differ = [f"{key} {actual[key]!r} (the config says {value!r})" for key, value in wanted.items()
              if actual[key] != value]
    if differ:
        raise StreamMismatchError(f"stream {stream.name} exists with other settings: {', '.join(differ)};"
                                  " change the stream (nats stream edit) or [fleet], mepd leaves it as it is")
