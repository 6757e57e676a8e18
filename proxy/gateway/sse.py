"""An incremental Server-Sent Events parser (WHATWG HTML, "event stream interpretation").

Fed raw chunks exactly as they arrive: events may be split anywhere, even inside a CRLF.
Lines end in CRLF, LF or CR; `:` starts a comment; several `data:` lines join with "\n";
a blank line dispatches the event. The proxy relays the original bytes untouched and
uses this parser only to watch for the events that carry usage.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    event: str | None
    data: str


class SseParser:
    def __init__(self) -> None:
        self._buffer = b""
        self._skip_lf = False  # the last chunk ended in CR: an LF opening the next one belongs to it
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        buffer = self._buffer + chunk
        events: list[SseEvent] = []
        start = 0
        length = len(buffer)
        while start < length:
            lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, lf if lf != -1 else length)
            if cr != -1:
                end, next_start = cr, cr + 1
                if next_start < length:
                    if buffer[next_start:next_start + 1] == b"\n":
                        next_start += 1
                else:
                    self._skip_lf = True
            elif lf != -1:
                end, next_start = lf, lf + 1
            else:
                break
            event = self._line(buffer[start:end])
            if event is not None:
                events.append(event)
            start = next_start
        self._buffer = buffer[start:]
        return events

    def _line(self, raw: bytes) -> SseEvent | None:
        if not raw:  # dispatch; a block with no data line is no event (WHATWG)
            event = SseEvent(self._event, "\n".join(self._data)) if self._data else None
            self._event, self._data = None, []
            return event
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None  # id and retry are the client's business, relayed as bytes
