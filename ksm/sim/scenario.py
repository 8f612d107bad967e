"""Scenario files: scripted runs in YAML, no Python needed.

::

    seed: 1                      # optional: the scheduler's seed
    steps: 10000                 # optional: the step limit
    processes:
      echo.Server:               # a task name from init.yaml
        serve:                   # canned replies, per endpoint.method
          pingComp.pingImpl.Ping: {result: 8}
      echo.Client:
        run:                     # the process's main thread, step by step
          - call: pingComp.pingImpl.Ping
            channel: server_connection
            with: {value: 7}
            expect: {result: 8}
          - call: pingComp.pingImpl.Ping
            channel: server_connection
            with: {value: 5000}
            expect: rcSecurityDisallow

A reply under ``serve`` is a mapping of out-parameters, ``{error: {...}}`` for an
error reply, or ``default`` (every out-parameter zero or empty).  A ``run`` step is
one of ``call`` (with ``channel``, ``with``, ``expect``), ``connect: SERVICE``,
``publish: SERVICE`` (with ``endpoint``) and ``note: TEXT``; ``expect`` is ``ok``,
an IPC return code (``rcSecurityDisallow``, ``rcInvalidArgument``,
``rcNotConnected``), ``error`` or ``{error: {...}}`` for an error reply, or the exact
out-parameters.  A step whose result differs from ``expect`` is a failure of the
run; a step without ``expect`` that fails stops that thread (as an exception would).

Mistakes in the file are diagnostics (``SIM002``) with its line and column.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from policy_lang.diagnostics import Span
from policy_lang.literals import out_of_range_message, oversized_int_digits
from policy_lang.solution import Solution, message_params
from policy_lang.source import UserFileError, read_user_text
from policy_lang.types import MethodDef

from ..events import Event
from ..structure import default_value
from ..values import message_from_json, method_params
from .codes import SIM_SCENARIO, SimInputError
from .kernel import IpcError, Kernel, Rc, ServerError
from .transport import dispatch

RC_NAMES = {rc.sdk_name: rc for rc in Rc if rc is not Rc.OK}
STEP_KINDS = ("call", "connect", "publish", "note")
STEP_KEYS = {"call": {"call", "channel", "with", "expect"}, "connect": {"connect", "expect"},
             "publish": {"publish", "endpoint", "expect"}, "note": {"note"}}


@dataclass
class Step:
    kind: str
    target: str                      # call: endpoint.method; connect/publish: service; note: text
    span: Span
    channel: str | None = None
    endpoint: str | None = None
    message: dict = field(default_factory=dict)
    expect: Any = None               # None: no expectation


@dataclass
class Script:
    """One process's part: canned replies and the steps of its main thread."""

    task: str
    span: Span
    serve: dict[str, tuple[str, Any]] = field(default_factory=dict)   # endpoint.method -> (kind, params)
    run: list[Step] = field(default_factory=list)


@dataclass
class Scenario:
    path: str
    seed: int | None
    steps: int | None
    scripts: list[Script]


@dataclass
class Failure:
    """A step whose result was not the one expected."""

    span: Span
    message: str

    def render(self) -> str:
        return f"{self.span}: expectation failed: {self.message}"


class _OversizedInt(yaml.YAMLError):
    """An integer scalar too long to convert (see :mod:`policy_lang.literals`), with its node."""

    def __init__(self, node: ScalarNode, digits: int):
        super().__init__(out_of_range_message(digits))
        self.node, self.digits = node, digits


class _ValueLoader(yaml.SafeLoader):
    """The safe constructor, except that an over-long integer is refused before ``int()``.

    Why: YAML's resolver tags any run of digits as an int and the safe constructor
    converts it with ``int()``, which raises a bare ``ValueError`` past 4,300 digits
    (and takes quadratic time before that); no scenario value is wider than 64 bits.
    """

    def construct_yaml_int(self, node: ScalarNode) -> int:
        digits = oversized_int_digits(str(node.value))
        if digits is not None:
            raise _OversizedInt(node, digits)
        return super().construct_yaml_int(node)


_ValueLoader.add_constructor("tag:yaml.org,2002:int", _ValueLoader.construct_yaml_int)


class _Reader:
    """YAML nodes -> :class:`Scenario`, every problem with its position."""

    def __init__(self, path: str, solution: Solution):
        self.path, self.solution = path, solution
        self.tasks = {i.task: i for i in solution.instances}

    def span(self, node: Node) -> Span:
        return Span(self.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def fail(self, node: Node | None, message: str, hint: str | None = None) -> SimInputError:
        return SimInputError(SIM_SCENARIO, message, self.span(node) if node is not None else Span(self.path, 1, 1), hint)

    def value(self, node: Node) -> Any:
        try:
            return _ValueLoader("").construct_document(node)
        except _OversizedInt as exc:
            raise self.fail(exc.node, out_of_range_message(exc.digits)) from None
        except yaml.MarkedYAMLError as exc:
            at = Span(self.path, exc.problem_mark.line + 1, exc.problem_mark.column + 1) if exc.problem_mark else None
            raise SimInputError(SIM_SCENARIO, f"cannot read this value: {exc.problem or exc}",
                                at or self.span(node)) from None
        except (yaml.YAMLError, ValueError, OverflowError) as exc:   # e.g. a date like 2024-13-45
            raise self.fail(node, f"cannot read this value: {exc}") from None

    def mapping(self, node: Node, what: str, keys: set[str] | None = None) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        out: dict[str, tuple[Node, Node]] = {}
        for k, v in node.value:
            if not isinstance(k, ScalarNode):
                raise self.fail(k, f"keys of {what} are plain names")
            if k.value in out:
                raise self.fail(k, f"{k.value!r} appears twice in {what}")
            if keys is not None and k.value not in keys:
                raise self.fail(k, f"unknown key {k.value!r} in {what}", f"expected one of: {', '.join(sorted(keys))}")
            out[k.value] = (k, v)
        return out

    def text(self, node: Node, what: str) -> str:
        if not isinstance(node, ScalarNode) or not node.value:
            raise self.fail(node, f"{what} must be a non-empty name")
        return node.value

    def integer(self, node: Node, what: str) -> int:
        v = self.value(node)
        if type(v) is not int or v < 0:
            raise self.fail(node, f"{what} must be a non-negative integer")
        return v

    def read(self, text: str) -> Scenario:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            span = Span(self.path, mark.line + 1, mark.column + 1) if mark else Span(self.path, 1, 1)
            raise SimInputError(SIM_SCENARIO, f"not valid YAML: {exc.problem or exc}", span) from None
        except yaml.YAMLError as exc:
            raise SimInputError(SIM_SCENARIO, f"not valid YAML: {exc}", Span(self.path, 1, 1)) from None
        if root is None:
            raise self.fail(None, "the scenario file is empty")
        top = self.mapping(root, "the scenario", {"seed", "steps", "processes"})
        if "processes" not in top:
            raise self.fail(root, "the scenario names no processes (key 'processes')")
        seed = self.integer(top["seed"][1], "seed") if "seed" in top else None
        steps = self.integer(top["steps"][1], "steps") if "steps" in top else None
        scripts = [self.script(k, v) for k, v in self.mapping(top["processes"][1], "processes").values()]
        return Scenario(self.path, seed, steps, scripts)

    def script(self, knode: Node, node: Node) -> Script:
        task = knode.value
        if task not in self.tasks:
            raise self.fail(knode, f"no process {task!r} in init.yaml",
                            f"processes are named by task: {', '.join(sorted(self.tasks))}")
        script = Script(task, self.span(knode))
        parts = self.mapping(node, f"process {task}", {"serve", "run"})
        if "serve" in parts:
            for k, v in self.mapping(parts["serve"][1], f"{task}: serve").values():
                script.serve[k.value] = self.reply(task, k, v)
        if "run" in parts:
            seq = parts["run"][1]
            if not isinstance(seq, SequenceNode):
                raise self.fail(seq, f"{task}: run must be a list of steps")
            script.run = [self.step(task, s) for s in seq.value]
        return script

    def reply(self, task: str, knode: Node, node: Node) -> tuple[str, Any]:
        method = self.server_method(task, knode)
        if isinstance(node, ScalarNode) and node.value == "default":
            return "response", {p.name: default_value(p.type) for p in method.out_params}
        value = self.value(node)
        if isinstance(value, dict) and set(value) == {"error"}:   # values as JSON writes them: bytes in hex
            return "error", message_from_json(value["error"] or {}, tuple(message_params(method, "error")))
        if not isinstance(value, dict):
            raise self.fail(node, "a reply is a mapping of out-parameters, {error: {...}} or default")
        return "response", message_from_json(value, tuple(message_params(method, "response")))

    def server_method(self, task: str, knode: Node) -> MethodDef:
        cls = self.solution.classes.get(self.tasks[task].cls)
        ep_name, _, m_name = knode.value.rpartition(".")
        ep = next((e for e in (cls.endpoints if cls else ()) if e.name == ep_name), None)
        method = ep.interface.method(m_name) if ep is not None else None
        if method is None:
            have = [f"{e.name}.{m.name}" for e in (cls.endpoints if cls else ()) for m in e.interface.methods]
            raise self.fail(knode, f"{task} has no method {knode.value!r}",
                            f"write endpoint.method; {task} has: {', '.join(have) or 'no endpoints'}")
        return method

    def step(self, task: str, node: Node) -> Step:
        items = self.mapping(node, "a step")
        kinds = [k for k in STEP_KINDS if k in items]
        if len(kinds) != 1:
            raise self.fail(node, "a step is exactly one of: " + ", ".join(STEP_KINDS))
        kind = kinds[0]
        self.mapping(node, f"a {kind} step", STEP_KEYS[kind])
        target_node = items[kind][1]
        step = Step(kind, self.text(target_node, kind) if kind != "note" else str(self.value(target_node)),
                    self.span(node))
        if "expect" in items:
            step.expect = self.expectation(items["expect"][1])
        if kind == "call":
            if "channel" not in items:
                raise self.fail(node, "a call step needs a channel")
            step.channel = self.text(items["channel"][1], "channel")
            if "with" in items:
                message = self.value(items["with"][1])
                if not isinstance(message, dict):
                    raise self.fail(items["with"][1], "with: must be a mapping of in-parameters")
                step.message = message
            step.endpoint, _, method = step.target.rpartition(".")
            if not method:
                raise self.fail(target_node, "call: write endpoint.method (e.g. pingComp.pingImpl.Ping)")
            step.message = self.typed(task, step.channel, step.endpoint, method, step.message)
        elif kind == "publish":
            step.endpoint = self.text(items["endpoint"][1], "endpoint") if "endpoint" in items else None
        return step

    def typed(self, task: str, channel: str, endpoint: str, method: str, message: Any) -> Any:
        """``message`` decoded as JSON is (``bytes<N>`` in hex) against the method of the
        server at the end of a static channel; over a channel made at run time the
        server is not known yet, and values are taken as written (``!!binary`` for bytes)."""
        server = next((c.server for c in self.solution.channels if c.id == channel and c.client == task), None)
        if server is None:
            return message
        params = method_params(self.solution, Event.request(task, server, endpoint, method, {}))
        return message_from_json(message, params)

    def expectation(self, node: Node) -> Any:
        value = self.value(node)
        if isinstance(value, str):
            if value in ("ok", "error") or value in RC_NAMES:
                return value
            raise self.fail(node, f"unknown expectation {value!r}",
                            "expect ok, error, " + ", ".join(RC_NAMES) + ", or the out-parameters")
        if isinstance(value, dict):
            return value
        raise self.fail(node, "expect is ok, error, a return code, {error: {...}} or the out-parameters")


def load_scenario(path: str | Path, solution: Solution) -> Scenario:
    """Read and check a scenario file against the solution; raises :class:`SimInputError`."""
    path = Path(path)
    try:
        text = read_user_text(path)
    except UserFileError as exc:   # a FIFO, /dev/zero, a huge or non-UTF-8 file: SRC001-SRC004
        raise SimInputError(exc.code, exc.message(str(path)), Span(str(path), exc.line, exc.column)) from None
    return _Reader(str(path), solution).read(text)


class _Canned:
    """Implements the methods of one endpoint with the scenario's canned replies."""

    def __init__(self, replies: dict[str, tuple[str, Any]]):
        for method, (kind, params) in replies.items():
            setattr(self, method, self._answer(kind, params))

    @staticmethod
    def _answer(kind: str, params: dict):
        def answer(**_in: Any) -> dict:
            if kind == "error":
                raise ServerError(params)
            return dict(params)
        return answer


def _outcome_of(kernel: Kernel, step: Step) -> Any:
    """Perform one step; returns what happened, in the vocabulary of ``expect``."""
    if step.kind == "call":
        try:
            return ("ok", kernel.call(step.channel, step.endpoint, step.target.rpartition(".")[2], step.message))
        except IpcError as exc:
            return (exc.rc.sdk_name, exc)
        except ServerError as exc:
            return ("error", exc.params)
    try:
        if step.kind == "connect":
            kernel.connect(step.target)
        else:
            kernel.publish(step.target, step.endpoint)
        return ("ok", {})
    except IpcError as exc:
        return (exc.rc.sdk_name, exc)


def _matches(expect: Any, got: tuple[str, Any]) -> bool:
    what, value = got
    if isinstance(expect, str):
        return expect == what
    if set(expect) == {"error"}:
        return what == "error" and value == (expect["error"] or {})
    return what == "ok" and value == expect


def _show(got: tuple[str, Any]) -> str:
    what, value = got
    if what == "ok":
        return f"ok {value}" if value else "ok"
    if what == "error":
        return f"error reply {value}"
    return f"{what} ({value.decision.reason})" if getattr(value, "decision", None) else f"{what} ({value})"


def install(kernel: Kernel, scenario: Scenario) -> list[Failure]:
    """Spawn the scenario's threads; the returned list fills with failures as it runs."""
    failures: list[Failure] = []
    for script in scenario.scripts:
        if script.task not in kernel.running:
            failures.append(Failure(script.span, f"{script.task} did not start (its execute was denied)"))
            continue
        by_endpoint: dict[str, dict] = {}
        for target, reply in script.serve.items():
            ep, _, method = target.rpartition(".")
            by_endpoint.setdefault(ep, {})[method] = reply
        if by_endpoint:
            impls = {ep: _Canned(replies) for ep, replies in by_endpoint.items()}
            kernel.spawn(script.task, lambda k, impls=impls: dispatch(k, impls), f"{script.task}/server")
        if script.run:
            kernel.spawn(script.task, lambda k, s=script: _perform(k, s, failures), f"{script.task}/main")
    return failures


def _perform(kernel: Kernel, script: Script, failures: list[Failure]) -> None:
    for step in script.run:
        if step.kind == "note":
            kernel.note(step.target)
            continue
        got = _outcome_of(kernel, step)
        if step.expect is not None:
            if not _matches(step.expect, got):
                failures.append(Failure(step.span, f"{script.task}: {step.kind} {step.target}: expected "
                                                   f"{step.expect}, got {_show(got)}"))
            continue
        if got[0] != "ok":
            failures.append(Failure(step.span, f"{script.task}: {step.kind} {step.target} failed: {_show(got)}; "
                                               f"the thread stops (add expect: to continue)"))
            return
