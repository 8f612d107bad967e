"""Benchmark (not a test): latency of ``ksm lsp`` on a generated 10,000-line policy and models/showcase.

Run: python tests/bench/bench_lsp.py [KEYSTROKES] [LINES]

A pygls client starts ``python -m ksm.lsp`` on stdio, opens the files and sends
single-character edits (alternately typing an ``x`` after a class name in a selector,
which makes an undeclared-class error, and deleting it, which clears it), waiting
after each for the publishDiagnostics that reflects it.  It then times hover and
completion requests.  Baseline, same run: ``policy_lang.load`` of the same solution
in this process (what a reload costs before any LSP overhead).
Goal (issue): a keystroke in a 10k-line policy answers in under 200 ms.
"""
from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as T
from pygls.lsp.client import LanguageClient

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] * 1000


def row(name: str, xs: list[float]) -> str:
    return f"  {name:<38} n={len(xs):<4} p50 {pct(xs, 50):7.1f} ms   p99 {pct(xs, 99):7.1f} ms   max {max(xs) * 1000:7.1f} ms"


class Bench:
    def __init__(self) -> None:
        self.client = LanguageClient("ksm-bench", "1")
        self.published: dict[str, tuple[float, list[T.Diagnostic]]] = {}
        self.event = asyncio.Event()
        self.version = 1

        @self.client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_publish(params: T.PublishDiagnosticsParams) -> None:
            self.published[params.uri] = (time.perf_counter(), params.diagnostics)
            self.event.set()

        self.logs: list[str] = []

        @self.client.feature(T.WINDOW_LOG_MESSAGE)
        def on_log(params: T.LogMessageParams) -> None:
            self.logs.append(params.message)

    async def wait_for(self, uri: str, check, since: float, timeout: float = 30.0) -> float:
        end = time.perf_counter() + timeout
        while True:
            got = self.published.get(uri)
            if got is not None and got[0] >= since and check(got[1]):
                return got[0] - since
            self.event.clear()
            left = end - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"no matching diagnostics for {uri}")
            try:
                await asyncio.wait_for(self.event.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def keystrokes(self, uri: str, text: str, n: int, pause: float = 0.0, newline: bool = False) -> list[float]:
        """Times from sending each one-character change to the publication reflecting it.

        Alternately types and deletes an ``x`` after the first ``src=`` class name (the
        ``x`` makes an unknown class, so the diagnostics show which text was read);
        ``newline`` also types a line break before the binding (and deletes it with
        the ``x``), so every declaration after it moves a line; ``pause`` waits
        between keystrokes (the linter runs then).
        """
        lines = text.split("\n")
        m = None
        for line_no, ln in enumerate(lines):
            m = re.match(r"(request|response|error) src=([\w.]+)", ln)
            if m:
                break
        assert m is not None, "no binding with src= to edit"
        name = m.group(2)
        pos = T.Position(line_no, m.end(2))
        bad = name + "x"
        out = []
        for i in range(n):
            self.version += 1
            typing = i % 2 == 0
            x_at = T.Range(pos, pos) if typing else T.Range(pos, T.Position(pos.line, pos.character + 1))
            changes = [T.TextDocumentContentChangePartial(range=x_at, text="x" if typing else "")]
            if newline:    # a line break before the binding: every declaration after it moves
                start_of_line = T.Position(pos.line, 0)
                nl_at = (T.Range(start_of_line, start_of_line) if typing
                         else T.Range(start_of_line, T.Position(pos.line + 1, 0)))
                nl = T.TextDocumentContentChangePartial(range=nl_at, text="\n" if typing else "")
                changes = changes + [nl] if typing else [nl] + changes
            start = time.perf_counter()
            self.client.text_document_did_change(T.DidChangeTextDocumentParams(
                T.VersionedTextDocumentIdentifier(uri=uri, version=self.version), changes))
            if typing:
                check = (lambda ds: any(bad in d.message for d in ds))
            else:
                check = (lambda ds: not any(bad in d.message for d in ds))
            out.append(await self.wait_for(uri, check, start))
            if pause:
                await asyncio.sleep(pause)
        return out

    async def requests(self, uri: str, text: str, n: int) -> tuple[list[float], list[float]]:
        lines = text.split("\n")
        hover_at = comp_at = None
        for i, ln in enumerate(lines):
            m = re.search(r"\bsrc=([\w.]+)", ln)
            if m and hover_at is None and re.match(r"(request|response|error)\b", ln):
                hover_at = T.Position(i, m.start(1) + 1)
            m = re.search(r"\bendpoint=", ln)
            if m and comp_at is None and re.match(r"(request|response|error)\b", ln):
                comp_at = T.Position(i, m.end())
        doc = T.TextDocumentIdentifier(uri)
        hovers, comps = [], []
        for _ in range(n):
            t = time.perf_counter()
            h = await self.client.text_document_hover_async(T.HoverParams(doc, hover_at))
            hovers.append(time.perf_counter() - t)
            assert h is not None
            t = time.perf_counter()
            c = await self.client.text_document_completion_async(T.CompletionParams(doc, comp_at))
            comps.append(time.perf_counter() - t)
            assert c is not None and c.items
        return hovers, comps


def baseline(root: Path, runs: int = 7) -> list[float]:
    from policy_lang import load

    out = []
    for _ in range(runs):
        t = time.perf_counter()
        load(root)
        out.append(time.perf_counter() - t)
    return out


async def main(n: int, target_lines: int) -> None:
    from ksm.load_bench import generate_solution

    tmp = Path(tempfile.mkdtemp(prefix="ksm-bench-lsp-"))
    gen_lines = generate_solution(tmp, target_lines)
    gen_policy = tmp / "einit" / "src" / "security.psl"
    show_root = REPO / "models" / "showcase"
    show_policy = show_root / "einit" / "src" / "security.psl.in"
    gen_text, show_text = gen_policy.read_text(), show_policy.read_text()
    print(f"workload: generated solution {gen_lines} PSL lines ({len(gen_text) // 1024} KiB, "
          f"{len(list((tmp / 'resources').iterdir()))} EDL/CDL/IDL files) and models/showcase "
          f"({show_text.count(chr(10))} lines of security.psl.in); {n} one-character edits each "
          "(alternately type/delete an 'x' after a class name), then "
          f"{n} hover + {n} completion requests each")

    b = Bench()
    await b.client.start_io(sys.executable, "-m", "ksm.lsp", cwd=str(REPO))
    await b.client.initialize_async(T.InitializeParams(capabilities=T.ClientCapabilities(), process_id=None))
    b.client.initialized(T.InitializedParams())
    results = {}
    try:
        for label, path, text in (("10k-line policy", gen_policy, gen_text), ("models/showcase", show_policy, show_text)):
            uri = path.as_uri()
            start = time.perf_counter()
            b.client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "psl", 1, text)))
            await b.client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(0, 0)))
            first = time.perf_counter() - start
            await asyncio.sleep(3.0)            # let the first lint and collection finish
            runs = {
                "keystroke in a line": await b.keystrokes(uri, text, n),
                "keystroke + line break (all move)": await b.keystrokes(uri, text, n, newline=True),
                "keystroke after a 0.6 s pause": await b.keystrokes(uri, text, max(6, n // 4), pause=0.6),
            }
            hovers, comps = await b.requests(uri, text, n)
            results[label] = (first, runs, hovers, comps, [m for m in b.logs if "psl parse" in m][-1:])
    finally:
        await b.client.shutdown_async(None)
        b.client.exit(None)
        await b.client.stop()

    for label, root in (("10k-line policy", tmp), ("models/showcase", show_root)):
        first, runs, hovers, comps, logs = results[label]
        base = baseline(root)
        print(f"{label}:")
        print(f"  open → first answer (load)               {first * 1000:7.1f} ms")
        for what, keys in runs.items():
            print(row(what, keys) + f"   p50/baseline {pct(keys, 50) / pct(base, 50):.2f}")
        print(row("hover", hovers))
        print(row("completion", comps))
        print(row("baseline: policy_lang.load in-process", base))
        for m in logs:
            print("  server's last log:", m)
    print("(keystroke times run from sending the change to the publication that reflects it; "
          "a pause lets the linter start, which a keystroke interrupts between two rules; "
          "p99 of a small sample is close to its maximum)")


if __name__ == "__main__":
    keystrokes = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    lines = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    asyncio.run(main(keystrokes, lines))
