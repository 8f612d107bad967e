"""init.yaml (the Einit description) → :class:`~policy_lang.syntax.ast.InitFile`.

The file is a YAML mapping whose ``entities`` key lists the processes Einit starts::

    entities:
      - name: acme.Sensor          # process class (required, dotted EDL name)
        task: frontSensor          # process (instance) name, default = name
        path: SensorBin            # executable in ROMFS, default = last segment of name
        args: ["--rate", "10"]     # main() arguments
        env: {LOG_LEVEL: "2"}      # environment variables
        connections:               # static channels whose client handle it owns
          - target: acme.Hub       # the server's *task* name
            id: hub_link           # channel name ...
          - target: kl.VfsRamFs
            id: {var: _VFS_CONNECTION_ID, include: vfs/defs.h}   # ... or a C macro

How it is read
--------------
* PyYAML's *safe* scanner/parser/composer builds a node graph (``yaml.compose``
  style, with a :class:`yaml.SafeLoader` subclass); nothing is ever constructed into
  Python objects, so no tag can run code.  Every node keeps its line/column mark,
  mapped through :meth:`SourceText.span_at` to the user's original (``.in``) file.
* Only the standard scalar/collection tags are accepted (``str int float bool null
  timestamp map seq``, and ``merge``/``value`` that a plain ``<<``/``=`` resolve
  to); anything else (``!!python/...``, ``!!binary``, ``!!set``, ``!custom``) is
  ``YML002``.  Scalars are used *as
  written*: ``10`` is the string ``"10"``, ``yes`` is ``"yes"``, ``0x10`` stays
  ``"0x10"``; a null scalar in ``args``/``env`` is the empty string.
* Anchors and aliases are allowed; merge keys (``<<: *defaults``) work as in YAML
  1.1, explicit keys winning.  Alias bombs and recursive aliases are refused before
  any traversal: aliases may add at most :data:`MAX_NODES` nodes to the document,
  *each alias counted as the full subtree it stands for* (``YML003``).  What is
  written is limited only by a memory guard (:data:`MAX_WRITTEN_NODES`), so a large
  honest file (30,000 channels) loads.
* Shape errors never raise: each becomes a diagnostic with a hint and the rest of
  the file is still read.  ``parse_init`` returns ``None`` only when the YAML itself
  cannot be read (``YML001``, ``YML003``, ``YML022``).

Choices made where the SDK documentation is silent
--------------------------------------------------
* Documented entity keys (KasperskyOS CE 1.0–1.4): ``name``, ``task``, ``path``,
  ``connections``; ``args`` and ``env`` are what the ``@INIT_<prog>_ENTITY_ARGS@`` /
  ``EXTRA_ENV`` template macros fill in.  Connection keys: ``target``, ``id``; the
  ``id`` macro form has ``var`` and ``include``.  Any other key is a *warning*
  (``YML009``), since newer SDKs may add keys; the set is :data:`ENTITY_KEYS` etc.
* ``connections:``, ``args:``, ``env:`` and ``entities:`` with no value (what a
  template placeholder that expanded to nothing leaves behind) mean "empty".
  ``name``/``task``/``path``/``target``/``id`` with no value are errors.
* A duplicate key in one mapping is an error (``YML010``); the *last* value is used,
  as PyYAML-based tools do.  A duplicate task name is an error (``YML011``) and the
  later entity is dropped, so later stages see each task once.
* Two connections of one entity with the same channel name are an error
  (``YML019``); the literal form ``id: X`` and the macro form ``{var: X}`` are
  different names (the macro's value is unknown here).  A macro id without
  ``include`` is a warning (``YML018``): einit needs the header to read the macro.
* Whether ``target`` names an existing task is *not* checked here (the resolver
  does that); every connection keeps its span.
"""
from __future__ import annotations

import re

import yaml
from yaml.composer import Composer
from yaml.resolver import Resolver
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..diagnostics import Diagnostics, Span, define_code
from ..source import SourceText
from .ast import InitConnection, InitEntity, InitFile

# ----------------------------------------------------------------------------- codes

YML_SYNTAX = define_code(
    "YML001", "error", "YAML syntax error",
    "check indentation (spaces, not tabs), the ':' after each key and the '- ' before "
    "each list item; if the file is a template, check what the placeholder on this "
    "line expanded to",
)
YML_UNSAFE_TAG = define_code(
    "YML002", "error", "unsupported YAML tag",
    "init.yaml holds plain strings, lists and mappings only; remove the '!tag' "
    "(tags such as !!python/object are never executed, and are refused)",
)
YML_TOO_LARGE = define_code(
    "YML003", "error", "YAML document too large or self-referencing",
    "the document, with every alias expanded, is far larger than any init "
    "description (or an alias refers to itself); remove the repeated or recursive aliases",
)
YML_NO_ENTITIES = define_code(
    "YML004", "error", "no 'entities' key at the top level",
    "an init description is a mapping whose 'entities:' key lists the processes to start",
)
YML_ENTITIES_NOT_LIST = define_code(
    "YML005", "error", "'entities' is not a list",
    "write each process as a list item: 'entities:' then '- name: <class>' lines",
)
YML_ENTITY_NOT_MAPPING = define_code(
    "YML006", "error", "process entry is not a mapping",
    "each item of 'entities' is a mapping such as '- name: acme.Client'",
)
YML_MISSING_NAME = define_code(
    "YML007", "error", "process without 'name'",
    "add 'name: <process class>' (the EDL name of the program, e.g. acme.Client)",
)
YML_BAD_CLASS_NAME = define_code(
    "YML008", "error", "invalid process class name",
    "a process class is a dotted name of identifiers, such as acme.Client or kl.VfsRamFs",
)
YML_UNKNOWN_KEY = define_code(
    "YML009", "warning", "unknown key",
    "the key is ignored; check its spelling (known keys are listed in the message). "
    "A key from a newer SDK can be ignored safely",
)
YML_DUPLICATE_KEY = define_code(
    "YML010", "error", "duplicate key in a mapping",
    "YAML tools keep only the last value of a repeated key, so the earlier one is lost; "
    "merge the two entries (for connections added by a template use "
    "@INIT_<prog>_ENTITY_CONNECTIONS+@ after your own 'connections:' list)",
)
YML_DUPLICATE_TASK = define_code(
    "YML011", "error", "duplicate task name",
    "every process needs its own task name; several processes of one class need "
    "distinct 'task:' values (task defaults to the class name)",
)
YML_NOT_STRING = define_code(
    "YML012", "error", "expected a single string value",
    "write a plain value such as 'name: acme.Client', not a list, a mapping or nothing",
)
YML_CONNECTIONS_NOT_LIST = define_code(
    "YML013", "error", "'connections' is not a list",
    "write each channel as a list item: 'connections:' then '- target: <task>' and "
    "'id: <channel>' lines",
)
YML_CONNECTION_NOT_MAPPING = define_code(
    "YML014", "error", "connection is not a mapping",
    "each connection is a mapping with 'target: <server task>' and 'id: <channel name>'",
)
YML_CONNECTION_NO_TARGET = define_code(
    "YML015", "error", "connection without 'target'",
    "add 'target: <server task name>' (the task that serves this channel)",
)
YML_CONNECTION_NO_ID = define_code(
    "YML016", "error", "connection without 'id'",
    "add 'id: <channel name>' (or 'id: {var: MACRO, include: header.h}')",
)
YML_BAD_ID_MACRO = define_code(
    "YML017", "error", "malformed channel id",
    "write the id as a string, or as '{var: MACRO_NAME, include: path/to/header.h}'",
)
YML_ID_NO_INCLUDE = define_code(
    "YML018", "warning", "channel id macro without 'include'",
    "add 'include: <header.h>' naming the header that defines the macro",
)
YML_DUPLICATE_CHANNEL = define_code(
    "YML019", "error", "duplicate channel id in one process",
    "a process looks its channels up by id, so each id may appear once per process; "
    "rename one of them (a template placeholder may already add this channel)",
)
YML_BAD_ARGS = define_code(
    "YML020", "error", "malformed 'args'",
    "write args as a list of strings, e.g. args: [\"--rate\", \"10\"]",
)
YML_BAD_ENV = define_code(
    "YML021", "error", "malformed 'env'",
    "write env as a mapping of variable names to strings, e.g. env: {LOG_LEVEL: \"2\"}",
)
YML_TOO_DEEP = define_code(
    "YML022", "error", "YAML nesting too deep",
    "an init description nests a few levels only; check for runaway brackets",
)
YML_NO_PROCESSES = define_code(
    "YML023", "warning", "no processes to start",
    "'entities' is empty; if it comes from a template, check that the placeholders "
    "(e.g. @INIT_EXTERNAL_ENTITIES@) have values",
)
YML_BAD_MERGE = define_code(
    "YML024", "error", "malformed merge key",
    "'<<' takes an alias of a mapping or a list of such aliases",
)

# ----------------------------------------------------------------------------- limits

#: Most nodes aliases may add to a document, each alias counted as the subtree it
#: stands for: what refuses alias bombs (a few lines that expand to billions).
MAX_NODES = 100_000
#: Most nodes a document may hold as written (a memory guard only: user files are at
#: most 16 MiB, and a 30,000-channel init.yaml has some 300,000 nodes).
MAX_WRITTEN_NODES = 5_000_000

TOP_KEYS = frozenset({"entities"})
ENTITY_KEYS = frozenset({"name", "task", "path", "connections", "args", "env"})
CONNECTION_KEYS = frozenset({"target", "id"})
ID_MACRO_KEYS = frozenset({"var", "include"})

_Y = "tag:yaml.org,2002:"
_MERGE_TAG = _Y + "merge"
_NULL_TAG = _Y + "null"
ALLOWED_TAGS = frozenset(
    _Y + t for t in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq", "merge", "value")
)  # "value" and "merge" are what a plain '=' and '<<' resolve to
_CLASS_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class _Limit(Exception):
    def __init__(self, mark) -> None:
        super().__init__("too many nodes")
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """Safe composer that counts nodes (aliases included) while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        self._nodes += 1
        if self._nodes > MAX_WRITTEN_NODES:
            raise _Limit(self.peek_event().start_mark)
        return super().compose_node(parent, index)


try:   # libyaml's event parser, when PyYAML was built with it
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - depends on how PyYAML was installed
    _CParser = None

#: Texts libyaml reads into exactly the events PyYAML's own parser gives: printable
#: ASCII and line feeds (no tab, no carriage return, no other character), ending
#: with a line feed.  (On other texts the two differ in places: the marks after a
#: last line without a line feed, what counts as printable, tabs.)
_PLAIN_TEXT = re.compile(r"[\n\x20-\x7e]*\n")
#: Deeper documents are read by PyYAML's parser, so that running out of stack
#: (YML022) happens exactly where it always did.
_FAST_MAX_DEPTH = 64


if _CParser is not None:
    class _FastLoader(Composer, _CParser, Resolver):
        """:class:`_Loader` with libyaml's event parser: the same composer (node count
        and all), so the same node graph for every text :data:`_PLAIN_TEXT` accepts.
        Only ``style`` (``''`` for ``None``) and the end marks of collections differ,
        and nothing here reads them."""

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            Composer.__init__(self)
            Resolver.__init__(self)
            self._nodes = 0

        def compose_node(self, parent, index):  # type: ignore[override]
            self._nodes += 1
            if self._nodes > MAX_WRITTEN_NODES:
                raise _Limit(self.peek_event().start_mark)
            return Composer.compose_node(self, parent, index)


_NOT_FAST = object()


def _compose_fast(text: str):
    """The node graph read with libyaml's events, or ``_NOT_FAST`` where that could
    differ from :func:`_compose`'s own reading (see :data:`_PLAIN_TEXT`) or fails."""
    if _CParser is None or not _PLAIN_TEXT.fullmatch(text):
        return _NOT_FAST
    loader = _FastLoader(text)
    try:
        node = loader.get_single_node()
    except Exception:   # errors, limits: PyYAML's parser reads the text again and says what it says
        return _NOT_FAST
    finally:
        loader.dispose()
    if node is not None and _depth(node) > _FAST_MAX_DEPTH:
        return _NOT_FAST
    return node


def _compose(text: str) -> Node | None:
    node = _compose_fast(text)
    if node is not _NOT_FAST:
        return node
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _depth(root: Node, max_visits: int = 1_000_000) -> int:
    """Nesting depth of a composed graph, aliases expanded; past :data:`_FAST_MAX_DEPTH`
    or ``max_visits`` nodes (an alias bomb, a recursive alias) it stops and says "too deep"."""
    deepest = 0
    visits = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        visits += 1
        if depth > deepest:
            deepest = depth
        if deepest > _FAST_MAX_DEPTH or visits > max_visits:
            return _FAST_MAX_DEPTH + 1
        stack.extend((c, depth + 1) for c in _children(node))
    return deepest


# ----------------------------------------------------------------------------- entry

def parse_init(source: SourceText, diags: Diagnostics) -> InitFile | None:
    """Read an init description; problems become diagnostics, never exceptions."""
    try:
        root = _compose(source.text)
    except _Limit as exc:
        diags.add(
            YML_TOO_LARGE, f"YAML document has more than {MAX_WRITTEN_NODES:,} nodes", _mark_span(source, exc.mark)
        )
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "end of stream" in (exc.problem or "").replace("<stream end>", "end of stream"):
            mark = exc.context_mark  # an unterminated construct: point where it starts
        diags.add(YML_SYNTAX, _yaml_message(exc, source), _mark_span(source, mark))
        return None
    except yaml.reader.ReaderError as exc:
        what = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        diags.add(YML_SYNTAX, f"character {what} is not allowed in YAML ({exc.reason})", source.span(exc.position))
        return None
    except yaml.YAMLError as exc:
        diags.add(YML_SYNTAX, f"YAML error: {exc}", Span(source.path, 1, 1))
        return None
    except RecursionError:
        diags.add(YML_TOO_DEEP, "YAML nesting too deep to read", Span(source.path, 1, 1))
        return None

    reader = _Reader(source, diags)
    if root is not None and not reader.check_graph(root):
        return None
    return InitFile(source, reader.top(root))


def _yaml_message(exc: yaml.MarkedYAMLError, source: SourceText) -> str:
    text = exc.problem or exc.context or "YAML syntax error"
    if exc.problem and exc.context:
        where = ""
        if exc.context_mark is not None:
            where = f" started at line {source.original_line(exc.context_mark.line + 1)}"
        text += f" ({exc.context}{where})"
    return text


def _mark_span(source: SourceText, mark) -> Span:
    if mark is None:
        return Span(source.path, 1, 1)
    return source.span_at(mark.line + 1, mark.column + 1)


# ----------------------------------------------------------------------------- reader

class _Reader:
    """Walks the composed node graph along the shape of an init description."""

    def __init__(self, source: SourceText, diags: Diagnostics) -> None:
        self.source = source
        self.diags = diags

    # -- positions
    def span(self, node: Node) -> Span:
        s = self.source.span_at(node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, ScalarNode) and node.end_mark is not None:
            end_line = self.source.original_line(node.end_mark.line + 1)
            return Span(s.file, s.line, s.column, end_line, node.end_mark.column + 1)
        return s

    # -- whole-graph checks: tags, alias expansion size, cycles
    def check_graph(self, root: Node) -> bool:
        """Report unsafe tags; refuse alias bombs and recursive aliases."""
        sizes: dict[int, int] = {}
        cap = MAX_WRITTEN_NODES + MAX_NODES + 1      # sizes are capped, so a bomb never builds a huge int
        on_path: set[int] = set()
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            nid = id(node)
            if done:
                on_path.discard(nid)
                total = 1 + sum(sizes[id(c)] for c in _children(node))
                sizes[nid] = min(total, cap)
                continue
            if nid in sizes:
                continue
            if nid in on_path:
                self.diags.add(YML_TOO_LARGE, "an alias refers to the node that contains it", self.span(node))
                return False
            on_path.add(nid)
            if node.tag not in ALLOWED_TAGS:
                self.diags.add(YML_UNSAFE_TAG, f"YAML tag {_show_tag(node.tag)} is not allowed", self.span(node))
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node))
        written = len(sizes)                           # every distinct node, each once
        if sizes[id(root)] - written > MAX_NODES:
            self.diags.add(
                YML_TOO_LARGE,
                f"with aliases expanded the document has more than {MAX_NODES:,} nodes beyond the {written:,} "
                "it holds as written",
                self.span(root),
            )
            return False
        return True

    # -- generic helpers
    def mapping(self, node: MappingNode, what: str) -> dict[str, tuple[Node, Node]]:
        """Keys → (key node, value node); merge keys applied, duplicates reported."""
        own: dict[str, tuple[Node, Node]] = {}
        merged: dict[str, tuple[Node, Node]] = {}
        for knode, vnode in node.value:
            if knode.tag == _MERGE_TAG:
                for src in self.merge_sources(vnode):
                    for key, kv in self.mapping(src, what).items():
                        merged.setdefault(key, kv)
                continue
            if not isinstance(knode, ScalarNode):
                self.diags.add(YML_NOT_STRING, f"a key of {what} must be a plain string", self.span(knode))
                continue
            key = knode.value
            if key in own:
                first = self.span(own[key][0])
                self.diags.add(
                    YML_DUPLICATE_KEY,
                    f"key '{key}' appears twice in {what} (first at line {first.line}); the last value is used",
                    self.span(knode),
                )
            own[key] = (knode, vnode)
        for key, kv in merged.items():
            own.setdefault(key, kv)
        return own

    def merge_sources(self, vnode: Node) -> list[MappingNode]:
        if isinstance(vnode, MappingNode):
            return [vnode]
        if isinstance(vnode, SequenceNode) and all(isinstance(v, MappingNode) for v in vnode.value):
            return list(vnode.value)
        self.diags.add(YML_BAD_MERGE, "'<<' must be given a mapping or a list of mappings", self.span(vnode))
        return []

    def unknown_keys(self, items: dict[str, tuple[Node, Node]], known: frozenset[str], what: str) -> None:
        for key, (knode, _) in items.items():
            if key not in known:
                self.diags.add(
                    YML_UNKNOWN_KEY,
                    f"unknown key '{key}' in {what} (known: {', '.join(sorted(known))})",
                    self.span(knode),
                )

    def string(self, node: Node, what: str) -> str | None:
        """A non-empty scalar as written, else a diagnostic and ``None``."""
        if not isinstance(node, ScalarNode):
            kind = "a list" if isinstance(node, SequenceNode) else "a mapping"
            self.diags.add(YML_NOT_STRING, f"{what} must be a single value, not {kind}", self.span(node))
            return None
        if node.tag == _NULL_TAG or not node.value.strip():
            self.diags.add(YML_NOT_STRING, f"{what} has no value", self.span(node))
            return None
        return node.value

    @staticmethod
    def is_null(node: Node) -> bool:
        return isinstance(node, ScalarNode) and node.tag == _NULL_TAG

    @staticmethod
    def text(node: ScalarNode) -> str:
        return "" if node.tag == _NULL_TAG else node.value

    # -- the shape of init.yaml
    def top(self, root: Node | None) -> tuple[InitEntity, ...]:
        if root is None:
            self.diags.add(YML_NO_ENTITIES, "the init description is empty", Span(self.source.path, 1, 1))
            return ()
        if not isinstance(root, MappingNode):
            self.diags.add(
                YML_NO_ENTITIES, "the init description must be a mapping with an 'entities' key", self.span(root)
            )
            return ()
        items = self.mapping(root, "the init description")
        self.unknown_keys(items, TOP_KEYS, "the init description")
        if "entities" not in items:
            self.diags.add(YML_NO_ENTITIES, "the init description has no 'entities' key", self.span(root))
            return ()
        knode, enode = items["entities"]
        if self.is_null(enode):
            self.diags.add(YML_NO_PROCESSES, "'entities' lists no processes", self.span(knode))
            return ()
        if not isinstance(enode, SequenceNode):
            self.diags.add(YML_ENTITIES_NOT_LIST, "'entities' must be a list of processes", self.span(enode))
            return ()
        if not enode.value:
            self.diags.add(YML_NO_PROCESSES, "'entities' lists no processes", self.span(knode))
        entities: list[InitEntity] = []
        tasks: dict[str, Span] = {}
        for item in enode.value:
            entity = self.entity(item)
            if entity is None:
                continue
            if entity.task in tasks:
                first = tasks[entity.task]
                how = "" if entity.task_given else " (task defaults to the class name)"
                self.diags.add(
                    YML_DUPLICATE_TASK,
                    f"task '{entity.task}' is already started at line {first.line}{how}; this entry is ignored",
                    entity.span,
                )
                continue
            tasks[entity.task] = entity.span
            entities.append(entity)
        return tuple(entities)

    def entity(self, node: Node) -> InitEntity | None:
        if not isinstance(node, MappingNode):
            self.diags.add(
                YML_ENTITY_NOT_MAPPING, "a process entry must be a mapping with at least 'name'", self.span(node)
            )
            return None
        items = self.mapping(node, "a process entry")
        self.unknown_keys(items, ENTITY_KEYS, "a process entry")

        name: str | None = None
        if "name" not in items or self.is_null(items["name"][1]):
            where = items["name"][0] if "name" in items else node
            self.diags.add(YML_MISSING_NAME, "process entry has no 'name'", self.span(where))
        else:
            name = self.string(items["name"][1], "'name'")
            if name is not None and not _CLASS_NAME_RE.fullmatch(name):
                self.diags.add(
                    YML_BAD_CLASS_NAME, f"'{name}' is not a valid process class name", self.span(items["name"][1])
                )
        task = self.string(items["task"][1], "'task'") if "task" in items else None
        path = self.string(items["path"][1], "'path'") if "path" in items else None
        args = self.args(items["args"][1]) if "args" in items else ()
        env = self.env(items["env"][1]) if "env" in items else ()
        conns = self.connections(items["connections"][1]) if "connections" in items else ()
        if name is None:
            return None
        return InitEntity(
            name=name,
            task=task if task is not None else name,
            # The last part of the class name; an invalid name (YML008, e.g. "acme.Hub.")
            # still gets a non-empty path, so nothing downstream meets an empty one.
            path=path if path is not None else (name.rstrip(".").rsplit(".", 1)[-1] or name),
            args=args,
            env=env,
            connections=conns,
            span=self.span(node),
            task_given=task is not None,
            name_span=self.span(items["name"][1]),
        )

    def args(self, node: Node) -> tuple[str, ...]:
        if self.is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            self.diags.add(YML_BAD_ARGS, "'args' must be a list of strings", self.span(node))
            return ()
        out: list[str] = []
        for item in node.value:
            if isinstance(item, ScalarNode):
                out.append(self.text(item))
            else:
                self.diags.add(YML_BAD_ARGS, "each argument must be a single string", self.span(item))
        return tuple(out)

    def env(self, node: Node) -> tuple[tuple[str, str], ...]:
        if self.is_null(node):
            return ()
        if not isinstance(node, MappingNode):
            self.diags.add(YML_BAD_ENV, "'env' must be a mapping of names to strings", self.span(node))
            return ()
        out: list[tuple[str, str]] = []
        for key, (_knode, vnode) in self.mapping(node, "'env'").items():
            if isinstance(vnode, ScalarNode):
                out.append((key, self.text(vnode)))
            else:
                self.diags.add(YML_BAD_ENV, f"environment variable '{key}' must have a string value", self.span(vnode))
        return tuple(out)

    def connections(self, node: Node) -> tuple[InitConnection, ...]:
        if self.is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            self.diags.add(YML_CONNECTIONS_NOT_LIST, "'connections' must be a list", self.span(node))
            return ()
        out: list[InitConnection] = []
        seen: dict[tuple[bool, str], Span] = {}
        for item in node.value:
            conn = self.connection(item)
            if conn is None:
                continue
            key = (conn.id_var is not None, conn.id)
            if key in seen:
                self.diags.add(
                    YML_DUPLICATE_CHANNEL,
                    f"channel id '{conn.id}' is already used by this process at line {seen[key].line}",
                    conn.span,
                )
                continue
            seen[key] = conn.span
            out.append(conn)
        return tuple(out)

    def connection(self, node: Node) -> InitConnection | None:
        if not isinstance(node, MappingNode):
            self.diags.add(
                YML_CONNECTION_NOT_MAPPING, "a connection must be a mapping with 'target' and 'id'", self.span(node)
            )
            return None
        items = self.mapping(node, "a connection")
        self.unknown_keys(items, CONNECTION_KEYS, "a connection")
        target = None
        if "target" in items:
            target = self.string(items["target"][1], "'target'")
        else:
            self.diags.add(YML_CONNECTION_NO_TARGET, "connection has no 'target'", self.span(node))
        ident: str | None = None
        var: str | None = None
        include: str | None = None
        if "id" not in items:
            self.diags.add(YML_CONNECTION_NO_ID, "connection has no 'id'", self.span(node))
        else:
            inode = items["id"][1]
            if isinstance(inode, MappingNode):
                var, include = self.id_macro(inode)
                ident = var
            else:
                ident = self.string(inode, "'id'")
        if target is None or ident is None:
            return None
        return InitConnection(target=target, id=ident, span=self.span(node), id_var=var, id_include=include,
                              target_span=self.span(items["target"][1]))

    def id_macro(self, node: MappingNode) -> tuple[str | None, str | None]:
        items = self.mapping(node, "a channel id")
        self.unknown_keys(items, ID_MACRO_KEYS, "a channel id")
        if "var" not in items:
            self.diags.add(YML_BAD_ID_MACRO, "channel id mapping has no 'var' (the macro name)", self.span(node))
            return None, None
        var = self.string(items["var"][1], "'var'")
        include = None
        if "include" in items:
            include = self.string(items["include"][1], "'include'")
        elif var is not None:
            self.diags.add(YML_ID_NO_INCLUDE, f"macro '{var}' has no 'include' header", self.span(node))
        return var, include


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_Y):] if tag.startswith(_Y) else tag


__all__ = ["ALLOWED_TAGS", "CONNECTION_KEYS", "ENTITY_KEYS", "MAX_NODES", "MAX_WRITTEN_NODES", "parse_init"]
