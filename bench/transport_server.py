"""A minimal paced SSE server for the transport benchmark (``bench_transport.py``).

It accepts HTTP/1.1 keep-alive POSTs and answers each with an OpenAI
chat-completions stream, chunked, one ``chat.completion.chunk`` per token: the
headers and the role chunk at once, then one token every ``interval`` seconds,
then the finish chunk, the usage chunk, ``[DONE]`` and the last chunk of the
chunked encoding in one write. Every token is its own ``send``, so a client that
keeps up reads one token per network read, which is what paced streams look like.

It is written on raw non-blocking sockets and ``selectors`` (epoll), with no
framework, so that it stays far cheaper than any client it serves: one ``send``
per token and no per-token allocation (the frames are built once). The pacing
queue is a FIFO: every stream has the same interval, so a stream rescheduled to
``due + interval`` goes to the back in order.

It counts what the benchmark needs: streams in flight (response headers sent,
last chunk not yet sent) and their maximum, streams completed and aborted, how
late each paced write was behind its due time, and its own CPU time.

Control is on stdin, one command a line, answered on stdout with one JSON line:
``STATS`` (counters and CPU), ``RESET`` (zero the counters), ``CONFIG tokens
interval`` (change the stream for the next requests), ``QUIT``. The first stdout
line is ``PORT <n>``. It listens on 127.0.0.1 only, through several
``SO_REUSEPORT`` listeners so that a burst of 10,000 connects is not cut by one
listener's backlog (``net.core.somaxconn``).

Run: ``python bench/transport_server.py [--tokens 50] [--interval 0.02] [--cpu 1]``
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import resource
import selectors
import socket
import sys
import time
from collections import deque

__all__ = ["Server", "expected_body", "sse_events"]

WORDS = ["the", " swarm", " streams", " tokens", " fast", ",", " and", " é", " 世界", " ok."]
_CHUNK_HEAD = {
    "id": "chatcmpl-bench",
    "object": "chat.completion.chunk",
    "created": 1700000000,
    "model": "bench",
    "system_fingerprint": "fp_bench",
}
_RESPONSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream\r\n"
    b"cache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
    b"\r\n"
)
_LISTENERS = 4
_BACKLOG = 65535  # the kernel caps it at net.core.somaxconn
_LAG_BUCKETS = 10001  # 1 ms buckets, the last one collects everything >= 10 s


def _event(choices: list[dict[str, object]], **extra: object) -> bytes:
    data = json.dumps({**_CHUNK_HEAD, "choices": choices, **extra}, separators=(",", ":"))
    return b"data: " + data.encode() + b"\n\n"


def sse_events(tokens: int) -> list[bytes]:
    """The SSE events of one stream: role, ``tokens`` tokens, then the end (one item).

    The last item holds the finish chunk, the usage chunk and ``[DONE]``: the
    server writes them together, as a provider does.
    """
    events = [_event([{"index": 0, "delta": {"role": "assistant", "content": ""}}])]
    for i in range(tokens):
        delta = {"content": WORDS[i % len(WORDS)]}
        events.append(_event([{"index": 0, "delta": delta, "finish_reason": None}]))
    usage = {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": tokens + 10}
    end = _event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    end += _event([], usage=usage) + b"data: [DONE]\n\n"
    events.append(end)
    return events


def expected_body(tokens: int) -> bytes:
    """The decoded (de-chunked) body of one stream of ``tokens`` tokens."""
    return b"".join(sse_events(tokens))


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class _Conn:
    __slots__ = ("due", "inbuf", "next", "outbuf", "sock", "streaming")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.streaming = False
        self.next = 0  # index of the next frame to send
        self.due = 0.0


class Server:
    """The server's state and its single-threaded event loop (see the module docstring)."""

    def __init__(self, tokens: int, interval: float) -> None:
        self.sel = selectors.DefaultSelector()
        self.listeners: list[socket.socket] = []
        self.port = 0
        self.queue: deque[_Conn] = deque()
        self.conns: dict[int, _Conn] = {}
        self.running = True
        self._stdin_buf = b""
        self.configure(tokens, interval)
        self.reset()

    def configure(self, tokens: int, interval: float) -> None:
        events = sse_events(tokens)
        self.tokens = tokens
        self.interval = interval
        # frames[0] goes with the headers; frames[1..tokens] are paced; the last
        # one (the end events plus the terminating chunk) is paced too.
        self.frames = [_RESPONSE_HEAD + _chunk(events[0])]
        self.frames += [_chunk(e) for e in events[1:-1]]
        self.frames.append(_chunk(events[-1]) + b"0\r\n\r\n")

    def reset(self) -> None:
        self.in_flight = sum(c.streaming for c in self.conns.values())
        self.max_in_flight = self.in_flight
        self.started = 0
        self.completed = 0
        self.aborted = 0
        self.accepted = 0
        self.bad_requests = 0
        self.writes = 0
        self.blocked_writes = 0
        self.lag = [0] * _LAG_BUCKETS
        self.lag_max = 0.0
        self.first_start = 0.0
        self.max_in_flight_at = 0.0
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu0 = ru.ru_utime + ru.ru_stime
        self.user0 = ru.ru_utime

    def stats(self) -> dict[str, object]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        total = sum(self.lag)
        p50 = p99 = 0.0
        if total:
            acc = 0
            for ms, n in enumerate(self.lag):
                acc += n
                if not p50 and acc >= 0.5 * total:
                    p50 = float(ms)
                if acc >= 0.99 * total:
                    p99 = float(ms)
                    break
        return {
            "cpu_s": ru.ru_utime + ru.ru_stime - self.cpu0,
            "cpu_user_s": ru.ru_utime - self.user0,
            "max_in_flight": self.max_in_flight,
            "max_in_flight_after_s": (
                self.max_in_flight_at - self.first_start if self.first_start else 0.0
            ),
            "in_flight": self.in_flight,
            "open_connections": len(self.conns),
            "accepted": self.accepted,
            "started": self.started,
            "completed": self.completed,
            "aborted": self.aborted,
            "bad_requests": self.bad_requests,
            "writes": self.writes,
            "blocked_writes": self.blocked_writes,
            "lag_p50_ms": p50,
            "lag_p99_ms": p99,
            "lag_max_ms": self.lag_max * 1000,
        }

    # -- sockets ---------------------------------------------------------------

    def listen(self, port: int = 0) -> int:
        for _ in range(_LISTENERS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", port))
            port = sock.getsockname()[1]
            sock.listen(_BACKLOG)
            sock.setblocking(False)
            self.sel.register(sock, selectors.EVENT_READ, "listen")
            self.listeners.append(sock)
        self.port = port
        return port

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(1000):
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: leave them in the backlog
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    return
                raise
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock)
            self.conns[sock.fileno()] = conn
            self.sel.register(sock, selectors.EVENT_READ, conn)
            self.accepted += 1

    def _close(self, conn: _Conn) -> None:
        if conn.streaming:
            conn.streaming = False
            self.in_flight -= 1
            self.aborted += 1
        fd = conn.sock.fileno()
        if fd >= 0:
            self.sel.unregister(conn.sock)
            del self.conns[fd]
        conn.sock.close()

    def _readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        conn.inbuf += data
        self._maybe_start(conn)

    def _maybe_start(self, conn: _Conn) -> None:
        if conn.streaming:
            return  # a pipelined request waits for the current response to end
        buf = conn.inbuf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        length = 0
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            try:
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            except ValueError:
                self.bad_requests += 1
                self._close(conn)
                return
        elif b"\r\ntransfer-encoding:" in head:
            self.bad_requests += 1  # the bench's clients always send a sized body
            self._close(conn)
            return
        if len(buf) < end + 4 + length:
            return
        del buf[: end + 4 + length]
        now = time.monotonic()
        conn.streaming = True
        conn.next = 1
        conn.due = now + self.interval
        self.started += 1
        self.in_flight += 1
        if not self.first_start:
            self.first_start = now
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
            self.max_in_flight_at = now
        self._send(conn, self.frames[0])
        self.queue.append(conn)

    def _send(self, conn: _Conn, frame: bytes) -> bool:
        """Write ``frame`` (or queue it behind unsent bytes); False if the peer is gone."""
        self.writes += 1
        if conn.outbuf:
            conn.outbuf += frame
            return True
        try:
            sent = conn.sock.send(frame)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return False
        if sent < len(frame):
            self.blocked_writes += 1
            conn.outbuf += frame[sent:]
            self.sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
        return True

    def _writable(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        del conn.outbuf[:sent]
        if not conn.outbuf:
            self.sel.modify(conn.sock, selectors.EVENT_READ, conn)

    def _tick(self) -> None:
        """Send every frame that is due; each conn is visited at most once a pass."""
        now = time.monotonic()
        queue = self.queue
        last = len(self.frames) - 1
        for _ in range(len(queue)):
            conn = queue[0]
            if conn.due > now:
                break
            queue.popleft()
            if not conn.streaming or conn.sock.fileno() < 0:
                continue  # closed meanwhile
            late = now - conn.due
            self.lag[min(int(late * 1000), _LAG_BUCKETS - 1)] += 1
            if late > self.lag_max:
                self.lag_max = late
            if not self._send(conn, self.frames[conn.next]):
                continue  # the peer is gone; _close counted the stream as aborted
            if conn.next == last:
                conn.streaming = False
                self.in_flight -= 1
                self.completed += 1
                self._maybe_start(conn)  # a pipelined request
            else:
                conn.next += 1
                conn.due += self.interval
                queue.append(conn)

    # -- control ---------------------------------------------------------------

    def _control(self) -> None:
        data = os.read(0, 4096)
        if not data:
            self.running = False
            return
        self._stdin_buf += data
        while b"\n" in self._stdin_buf:
            line, self._stdin_buf = self._stdin_buf.split(b"\n", 1)
            words = line.decode().split()
            if not words:
                continue
            reply: dict[str, object]
            if words[0] == "STATS":
                reply = self.stats()
            elif words[0] == "RESET":
                self.reset()
                reply = {"ok": True}
            elif words[0] == "CONFIG":
                self.configure(int(words[1]), float(words[2]))
                reply = {"ok": True, "tokens": self.tokens, "interval": self.interval}
            elif words[0] == "QUIT":
                self.running = False
                reply = {"ok": True}
            else:
                reply = {"error": f"unknown command {words[0]!r}"}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()

    def serve(self, control: bool = True) -> None:
        """Run until ``QUIT`` or the end of stdin (when ``control``)."""
        if control:
            self.sel.register(0, selectors.EVENT_READ, "control")
        while self.running:
            timeout = None
            if self.queue:
                timeout = max(0.0, self.queue[0].due - time.monotonic())
            for key, mask in self.sel.select(timeout):
                what = key.data
                if what == "listen":
                    self._accept(key.fileobj)  # type: ignore[arg-type]
                elif what == "control":
                    self._control()
                else:
                    if mask & selectors.EVENT_WRITE:
                        self._writable(what)
                    if mask & selectors.EVENT_READ and what.sock.fileno() >= 0:
                        self._readable(what)
            self._tick()
        for conn in list(self.conns.values()):
            self._close(conn)
        for sock in self.listeners:
            sock.close()


def nofile_target() -> int:
    """The open-file soft limit :func:`raise_nofile` sets: the hard limit (at most 2**20)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return max(soft, 1 << 20) if soft != resource.RLIM_INFINITY else soft
    return max(soft, hard)


def raise_nofile() -> int:
    """Raise this process's open-file soft limit to its hard limit; return the soft one.

    10,000 streams need 10,000 sockets on each side, above the common default
    of 1,024. Where the raise is refused, the soft limit stays, and the run
    reports the resulting connect errors.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = nofile_target()
    if target != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU core")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    raise_nofile()
    server = Server(args.tokens, args.interval)
    port = server.listen(args.port)
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
