"""What a run leaves behind: the records, shown as a timeline, JSON lines, a trace
for Perfetto / chrome://tracing, and the per-channel summary.

A record is a flat dictionary (JSON as it is):

=========== ==================================================================
``step``    the scheduler's step when it was made
``op``      execute | call | recv | reply | publish | connect | note | crash
``thread``  the thread (``task/main``, ``task/server0``, ...) or ``kernel``
``task``    the thread's process
``channel`` the channel id (``kernel`` for kernel services)
``exchange``the number of the request a call, recv and reply belong to
``event``   the security event, described; ``kind src dst endpoint method``
            and ``message`` (bytes as hex) are there too
``decision``granted | denied, with ``reason`` and ``explain`` (each binding,
            section and call that took part, with file:line)
``rc``      the IPC return code the sender got
``detail``  free text (notes, crashes, state changes)
=========== ==================================================================
"""
from __future__ import annotations

import json
from collections import Counter
from typing import IO, Iterable

from ..events import jsonable


def write_jsonl(records: Iterable[dict], out: IO[str]) -> int:
    """One JSON object per line; returns the number written."""
    n = 0
    for rec in records:
        out.write(json.dumps(jsonable(rec), sort_keys=True, default=str) + "\n")
        n += 1
    return n


def _where(rec: dict) -> str:
    """The file:line of the rule that denied, from the explanation."""
    for line in rec.get("explain", ()):
        loc, _, rest = line.partition(" ")
        if rest.startswith(("denied", "error")):
            return f" at {loc}"
    return ""


def _message(rec: dict) -> str:
    msg = rec.get("message")
    if not msg:
        return ""
    text = json.dumps(jsonable(msg), separators=(", ", ": "))
    return " " + (text if len(text) <= 60 else text[:57] + "...")


def timeline_line(rec: dict) -> str:
    """One record as a line a person reads."""
    op = rec["op"]
    head = f"{rec['step']:>6}  {rec['thread']:<24} {op:<8}"
    if op in ("note", "crash", "publish", "connect") or "event" not in rec:
        if rec.get("rc"):
            return f"{head} [{rec.get('channel', '-')}] {rec['rc']}: {rec.get('detail', '')}"
        return f"{head} {rec.get('channel', '') + ' ' if op == 'connect' else ''}{rec.get('detail', '')}"
    if op == "execute":
        verdict = rec["decision"].upper()
        src = rec.get("src") or "kernel"
        return f"{head} {src} starts {rec.get('dst')}: {verdict}" + (
            f" ({rec['reason']}{_where(rec)})" if rec["decision"] == "denied" else "")
    what = ".".join(str(x) for x in (rec.get("endpoint"), rec.get("method")) if x is not None) or "?"
    peer = rec.get("dst") if op == "call" else rec.get("src") if op == "recv" else rec.get("dst")
    arrow = {"call": "->", "recv": "<-", "reply": "->"}.get(op, "")
    kind = f"{rec['kind']} " if op == "reply" and rec.get("kind") == "error" else ""
    line = f"{head} [{rec.get('channel', '-')}] {arrow} {peer} {kind}{what}{_message(rec)}"
    if "decision" in rec:
        line += f"  {rec['decision'].upper()}"
        if rec["decision"] == "denied":
            line += f" {rec.get('rc', '')}: {rec['reason']}{_where(rec)}"
    elif rec.get("rc"):
        line += f"  {rec['rc']}: {rec.get('detail', '')}"
    return line


def timeline(records: Iterable[dict]) -> str:
    return "\n".join(timeline_line(r) for r in records)


def channel_summary(records: Iterable[dict]) -> list[dict]:
    """Messages granted and denied per channel and message kind, busiest first."""
    counts: Counter = Counter()
    for rec in records:
        if rec["op"] in ("call", "reply") and "decision" in rec:
            kind = rec.get("kind", "request")
            pair = (rec["src"], rec["dst"]) if kind == "request" else (rec["dst"], rec["src"])
            counts[(rec.get("channel", "-"), pair[0], pair[1], kind, rec["decision"])] += 1
    rows: dict[tuple, dict] = {}
    for (channel, client, server, kind, decision), n in counts.items():
        row = rows.setdefault((channel, client, server), {"channel": channel, "client": client, "server": server,
                                                          "request": [0, 0], "response": [0, 0], "error": [0, 0]})
        row[kind][0 if decision == "granted" else 1] += n
    return sorted(rows.values(), key=lambda r: (-sum(sum(r[k]) for k in ("request", "response", "error")),
                                                 r["client"], r["server"], r["channel"]))


def render_summary(rows: list[dict]) -> str:
    """The per-channel table (granted/denied for requests, responses and errors)."""
    if not rows:
        return "no messages were sent"
    head = ("channel", "client", "server", "requests", "responses", "errors")
    body = [(r["channel"], r["client"], r["server"],
             *(f"{r[k][0]} granted / {r[k][1]} denied" if sum(r[k]) else "-" for k in ("request", "response", "error")))
            for r in rows]
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body])


def chrome_trace(records: list[dict]) -> dict:
    """The Trace Event Format Perfetto and chrome://tracing open.

    Processes are the solution's processes, threads their threads; each exchange
    is a slice on the client thread from its call to its reply, and one on the
    server thread from recv to reply, joined by a flow arrow; a denied message is
    an instant event.  Time is the record's index (10 µs each): the simulator has
    no clock, and order is what matters.
    """
    pids: dict[str, int] = {}
    tids: dict[str, int] = {}
    events: list[dict] = []

    def ids(rec: dict) -> tuple[int, int]:
        task, thread = rec["task"], rec["thread"]
        if task not in pids:
            pids[task] = len(pids) + 1
            events.append({"ph": "M", "name": "process_name", "pid": pids[task], "tid": 0, "args": {"name": task}})
        if thread not in tids:
            tids[thread] = len(tids) + 1
            events.append({"ph": "M", "name": "thread_name", "pid": pids[task], "tid": tids[thread],
                           "args": {"name": thread}})
        return pids[task], tids[thread]

    open_calls: dict[int, tuple[int, int, int, str]] = {}     # exchange -> (pid, tid, ts, name)
    open_serves: dict[int, tuple[int, int, int]] = {}
    for i, rec in enumerate(records):
        ts = i * 10
        pid, tid = ids(rec)
        name = ".".join(str(x) for x in (rec.get("endpoint"), rec.get("method")) if x is not None) or rec["op"]
        args = {k: rec[k] for k in ("event", "reason", "rc", "message", "detail", "channel") if k in rec}
        ex = rec.get("exchange")
        if rec.get("decision") == "denied" or rec["op"] in ("note", "crash", "publish", "connect", "execute"):
            label = f"{rec['op']} {name}" + (" DENIED" if rec.get("decision") == "denied" else "")
            events.append({"ph": "i", "s": "t", "name": label, "pid": pid, "tid": tid, "ts": ts, "args": args})
        if rec["op"] == "call" and ex:
            open_calls[ex] = (pid, tid, ts, name)
            events.append({"ph": "s", "id": ex, "name": "request", "cat": "ipc", "pid": pid, "tid": tid, "ts": ts})
        elif rec["op"] == "recv" and ex:
            open_serves[ex] = (pid, tid, ts)
            events.append({"ph": "f", "bp": "e", "id": ex, "name": "request", "cat": "ipc",
                           "pid": pid, "tid": tid, "ts": ts})
        elif rec["op"] == "reply" and ex:
            if ex in open_serves:
                spid, stid, start = open_serves.pop(ex)
                events.append({"ph": "X", "name": f"serve {name}", "cat": "ipc", "pid": spid, "tid": stid,
                               "ts": start, "dur": ts - start + 5, "args": args})
            if ex in open_calls:
                cpid, ctid, start, cname = open_calls.pop(ex)
                events.append({"ph": "X", "name": f"call {cname}", "cat": "ipc", "pid": cpid, "tid": ctid,
                               "ts": start, "dur": ts - start + 10, "args": args})
    return {"traceEvents": events, "displayTimeUnit": "ns", "otherData": {"producer": "ksm simulate"}}
