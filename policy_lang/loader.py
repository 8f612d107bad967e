"""Finding and reading a solution's files: the only stage that touches the file system.

A user points the toolkit at a folder (or a top-level ``.psl``).  The workspace finds
the top-level policy and the init file, knows the include roots, expands build-time
templates, parses each file once, and looks up EDL/CDL/IDL descriptions by the dotted
names the other files use.  Everything after this stage works on syntax trees.

Lookup of a description named ``a.b.Name`` (class, component or package), first hit
wins:

1. a file anywhere under the solution folder or an ``-I`` folder whose *declared*
   name is ``a.b.Name`` (real projects keep ``resources/edl/Client.edl`` for class
   ``echo.Client``; the build renames it, so the declared name is what counts);
2. ``<root>/a/b/Name.<ext>`` under each include root (``-I`` folders, the folder of
   the top-level policy, the solution folder, then ``--sdk`` folders) — the SDK's
   convention.

PSL includes (``use a.b._``) resolve to ``<root>/a/b.psl`` (or ``.psl.in``) under the
folder of the top-level policy, then each ``-I`` folder, the solution folder, and
``--sdk`` folders; ``nk.*`` model files resolve to the built-in model library.
"""
from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .diagnostics import Diagnostics, Span, define_code
from .perf import timed
from .source import SourceText, UserFileError, display_path, read_text, read_user_bytes
from .syntax.ast import ComponentFile, IdlFile, InitFile, PslFile
from .syntax.components import parse_component
from .syntax.idl import parse_idl
from .syntax.init_yaml import parse_init
from .syntax.psl import parse_psl
from .syntax.psl_reparse import PslReparser
from .templates import expand_template, needs_expansion

INC_NO_POLICY = define_code(
    "INC001", "error", "no top-level policy found",
    "pass the top-level .psl file, or a folder holding security.psl(.in) or einit/src/security.psl(.in)",
)
INC_AMBIGUOUS_POLICY = define_code(
    "INC002", "error", "several candidate top-level policies",
    "pass the top-level .psl file explicitly",
)
INC_CYCLE = define_code(
    "INC003", "error", "include cycle",
    "remove one of the `use` declarations that form the cycle",
)
INC_ESCAPE = define_code(
    "INC004", "error", "include resolves outside the search roots",
    "a `use` path must stay inside the policy folder, -I folders or --sdk folders (check symbolic links)",
)
INC_NOT_FOUND = define_code(
    "INC005", "error", "included policy file not found",
    "check the dotted path (each dot is a folder) or add its root folder with -I DIR",
)
INC_BUILD_POLICY = define_code(
    "INC011", "note", "top-level policy taken from the build",
    "einit/CMakeLists.txt names the policy the SDK compiles; pass another .psl explicitly to check that one",
)
INC_BUILD_POLICIES = define_code(
    "INC012", "warning", "the build compiles other top-level policies",
    "einit/CMakeLists.txt chooses the policy by platform or option; pass the one you mean explicitly",
)
INC_OPAQUE_FRAGMENT = define_code(
    "INC010", "warning", "included policy file is not in the solution: treated as opaque",
    "the build or the SDK may supply it; pass -I DIR (the folder that holds it) or --sdk DIR to check it. "
    "Until then, classes it would declare load as opaque",
)
INC_NO_INIT = define_code(
    "INC006", "warning", "no init.yaml found",
    "pass --init FILE; without it the solution has no process instances or static channels",
)
INC_UNKNOWN_NK = define_code(
    "INC007", "warning", "unknown SDK model file",
    "the built-in model library provides nk.base, nk.basic, nk.regex, nk.hashmap, nk.staticmap, nk.flow and nk.mic; pass --sdk DIR for others",
)
INC_AMBIGUOUS_FILE = define_code(
    "INC008", "warning", "several files declare the same name",
    "the first one found is used; remove or rename the other",
)
INC_TOO_MANY_FILES = define_code(
    "INC009", "error", "too many files under the solution folder",
    "point the toolkit at the solution folder, not a whole disk (limit: 20,000 description files)",
)

MAX_INDEXED_FILES = 20_000
_SKIP_DIRS = {".git", "build", "node_modules", "__pycache__", ".venv", "venv", ".tox"}
_EXT_KIND = {".edl": "class", ".cdl": "component", ".idl": "idl"}


@dataclass(frozen=True)
class LoadOptions:
    """What the user gave on the command line (or to :func:`policy_lang.load`).

    Every caller passes through here, so the arguments are checked here, once, and
    a wrong type is a TypeError naming the fix.  Why so strict: a bare string is
    itself iterable, so ``include_dirs="/tmp"`` used to become the folders ``/``,
    ``t``, ``m``, ``p`` — and a scan of the whole disk, reported as dozens of
    unrelated errors; ``defines=["A=1"]`` failed inside ``dict()`` with a message
    about "update sequence elements".  Plain strings and ``os.PathLike`` are taken
    for paths; ``None`` for "none given".
    """

    init: Path | None = None
    include_dirs: tuple[Path, ...] = ()
    defines: Mapping[str, str] = field(default_factory=dict)
    sdk_dirs: tuple[Path, ...] = ()
    trusted: tuple[str, ...] = ()     # process classes the user trusts (docs/kernel.md)
    #: Texts to use instead of the files on disk, by absolute resolved path (an editor's
    #: unsaved buffers: ``ksm lsp``); a path not in it is read from disk as usual.
    overlay: Mapping[str, str] = field(default_factory=dict)
    #: Keeps each PSL file's last parse so that a reload re-reads only the declarations
    #: an edit touched (an editor's reloads: ``ksm lsp``); None parses every file whole.
    reparse: PslReparser | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "init", _init_path(self.init))
        trusted = (self.trusted,) if isinstance(self.trusted, str) else self.trusted
        if not isinstance(trusted, (tuple, list)) or not all(isinstance(t, str) for t in trusted):
            raise TypeError("trusted is a list of process class names, e.g. ['lock.KeyStore']")
        object.__setattr__(self, "trusted", tuple(trusted))
        for name in ("include_dirs", "sdk_dirs"):
            object.__setattr__(self, name, _folders(name, getattr(self, name)))
        object.__setattr__(self, "defines", _defines(self.defines))


def solution_path(target: object) -> Path:
    """The ``target`` of :func:`policy_lang.load` as a Path, or a TypeError saying what it takes.

    A path that does not exist is not an error here: it is reported in the
    solution's diagnostics (SRC001), like every other problem with the user's files.
    """
    if isinstance(target, (str, os.PathLike)) and not isinstance(target, bytes):
        path = os.fspath(target)
        if isinstance(path, str):
            return Path(path)
    raise TypeError("load() takes the path of a solution folder or of its top-level .psl file "
                    f"(str or os.PathLike), e.g. load('models/echo'); got {_what(target)}")


def _init_path(value: object) -> Path | None:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)) and isinstance(os.fspath(value), str):
        if os.fspath(value) == "":
            raise ValueError("init takes the path of the init.yaml file, or None to look for it; got an empty string")
        return Path(value)
    raise TypeError("init takes the path of the init.yaml file (str or os.PathLike), or None to look for it, "
                    f"e.g. init='einit/src/init.yaml'; got {_what(value)}")


def _folders(name: str, value: object) -> tuple[Path, ...]:
    """``include_dirs``/``sdk_dirs``: an ordered collection of folder paths."""
    if value is None:
        return ()
    if isinstance(value, (str, os.PathLike, bytes)):
        folder = os.fsdecode(value)
        raise TypeError(f"{name} takes a list of folders, e.g. {name}=[{folder!r}]; got {_what(value)}")
    if isinstance(value, (set, frozenset)) or isinstance(value, Mapping) or not isinstance(value, Iterable):
        why = " (an ordered one: the first folder that holds a file wins)" if isinstance(value, (set, frozenset)) else ""
        raise TypeError(f"{name} takes a list of folders{why}, e.g. {name}=['include']; got {_what(value)}")
    folders = tuple(value)
    for i, p in enumerate(folders):
        if not isinstance(p, (str, os.PathLike)) or not isinstance(os.fspath(p), str):
            raise TypeError(f"{name}[{i}] must be a folder path (str or os.PathLike); got {_what(p)}")
    return tuple(Path(p) for p in folders)


def _defines(value: object) -> dict[str, str]:
    """``defines``: placeholder name -> the text that replaces ``@NAME@`` (``-D NAME=VALUE``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        hint = ""
        items = list(value) if isinstance(value, (list, tuple)) else []
        if items and all(isinstance(x, str) and "=" in x for x in items):
            pairs = dict(x.split("=", 1) for x in items)
            hint = f"; for a list of 'NAME=VALUE' strings write defines={pairs!r}"
        elif items and all(isinstance(x, (list, tuple)) and len(x) == 2 for x in items):
            hint = "; for a list of (name, value) pairs write defines=dict(pairs)"
        raise TypeError(f"defines takes a mapping of placeholder names to values, e.g. defines={{'A': '1'}}; "
                        f"got {_what(value)}{hint}")
    out: dict[str, str] = {}
    for key, text in value.items():
        if not isinstance(key, str):
            raise TypeError(f"defines keys are placeholder names (str), e.g. defines={{'A': '1'}}; got {_what(key)}")
        if not isinstance(text, str):
            raise TypeError(f"defines[{key!r}] must be the text that replaces @{key}@ (str), "
                            f"e.g. defines={{{key!r}: '1'}}; got {_what(text)}")
        out[key] = text
    return out


def _what(value: object) -> str:
    """What a wrong argument was, for the TypeError: strings and paths by value, the rest by type."""
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:60] + "…"
        return f"the string {shown!r}"
    if isinstance(value, os.PathLike):
        return f"the path {os.fsdecode(value)!r}"
    return type(value).__name__


@dataclass
class LoadedFile:
    path: Path
    source: SourceText
    language: str
    templated: bool


class Workspace:
    """Reads, expands and parses files on demand, each at most once."""

    def __init__(self, root: Path, options: LoadOptions, diags: Diagnostics):
        self.root = root
        self.options = options
        self.diags = diags
        self.files: dict[Path, LoadedFile] = {}
        self._psl: dict[Path, PslFile | None] = {}
        self._components: dict[Path, ComponentFile | None] = {}
        self._idl: dict[Path, IdlFile | None] = {}
        self._declared: dict[str, dict[str, list[Path]]] | None = None
        self.policy_dir: Path = root
        # One load sees one file system: each path is resolved (symbolic links, ..)
        # once, and shown relative to the working directory as it was at the start.
        self._real: dict[Path, Path] = {}
        self._shown: dict[Path, str] = {}
        self._cwd: tuple[Path, Path, str | None] | None = None
        self._roots: tuple[Path, list[Path]] | None = None

    # ------------------------------------------------------------------ paths
    def real(self, path: Path) -> Path:
        """``path.resolve()``, once per path and load."""
        real = self._real.get(path)
        if real is None:
            real = self._real[path] = path.resolve()
            self._real.setdefault(real, real)
        return real

    def shown(self, path: Path) -> str:
        """:func:`display_path` of ``path``, with the paths resolved once per load."""
        out = self._shown.get(path)
        if out is None:
            out = self._shown[path] = self._display(path)
        return out

    def _display(self, path: Path) -> str:
        if self._cwd is None:
            cwd = Path.cwd()
            try:
                cwd_real = cwd.resolve()
            except (OSError, ValueError):
                return display_path(path)
            text = str(cwd)
            # The working directory as a prefix, when it is resolved and not the root.
            prefix = text + os.sep if text == str(cwd_real) and os.path.dirname(text) != text else None
            self._cwd = (cwd, cwd_real, prefix)
        cwd, cwd_real, prefix = self._cwd
        try:
            real = self.real(path)
            shown = str(path)
            if prefix is not None and str(real) == shown:
                # Both resolved (the usual case): relpath and is_relative_to by string.
                return shown[len(prefix):] if shown.startswith(prefix) else ("." if shown == prefix[:-1] else shown)
            return os.path.relpath(path, cwd) if real.is_relative_to(cwd_real) else shown
        except (OSError, ValueError):
            return str(path)

    # ------------------------------------------------------------------ reading
    def source(self, path: Path, language: str, at: Span | None = None) -> SourceText | None:
        path = self.real(path)
        loaded = self.files.get(path)
        if loaded is not None:
            return loaded.source
        return timed("read", self._read, path, language, at)

    def _read(self, path: Path, language: str, at: Span | None) -> SourceText | None:
        shown = self.shown(path)
        text = self.options.overlay.get(str(path)) if self.options.overlay else None
        if text is None:
            text = read_text(path, self.diags, shown, at)
        if text is None:
            return None
        comments = "yaml" if language == "yaml" else "c"
        templated = needs_expansion(text, comments)
        if templated:
            src = expand_template(text, shown, self.options.defines, self.diags, language=comments)
        else:
            src = SourceText(shown, text)
        self.files[path] = LoadedFile(path, src, language, templated)
        return src

    def _parsed(self, memo: dict, path: Path, language: str, at: Span | None, parse):
        """Parse ``path`` once; ``memo`` keeps the result (None for an unreadable file)."""
        path = self.real(path)
        if path not in memo:
            src = self.source(path, language, at)
            memo[path] = timed("parse " + language, parse, src, self.diags) if src is not None else None
        return memo[path]

    def psl(self, path: Path, at: Span | None = None) -> PslFile | None:
        reparse = self.options.reparse
        return self._parsed(self._psl, path, "psl", at, parse_psl if reparse is None else reparse.parse)

    def component_file(self, path: Path, kind: str, at: Span | None = None) -> ComponentFile | None:
        return self._parsed(self._components, path, "edl" if kind == "class" else "cdl", at,
                            lambda src, diags: parse_component(src, diags, kind))

    def idl_file(self, path: Path, at: Span | None = None) -> IdlFile | None:
        return self._parsed(self._idl, path, "idl", at, parse_idl)

    def init_file(self, path: Path) -> InitFile | None:
        src = self.source(path, "yaml")
        return timed("parse yaml", parse_init, src, self.diags) if src is not None else None

    @property
    def stand_ins(self) -> frozenset[str]:
        """Names that template placeholders without a value left in the files read so far."""
        out: frozenset[str] = frozenset()
        for lf in self.files.values():
            out |= lf.source.stand_ins
        return out

    # ------------------------------------------------------------------ roots
    def include_roots(self) -> list[Path]:
        if self._roots is not None and self._roots[0] == self.policy_dir:
            return list(self._roots[1])
        roots: list[Path] = [self.policy_dir]
        roots += [p for p in self.options.include_dirs]
        roots.append(self.root)
        roots += list(self.options.sdk_dirs)
        seen: list[Path] = []
        for r in roots:
            r = self.real(r)
            if r not in seen:
                seen.append(r)
        self._roots = (self.policy_dir, seen)
        return list(seen)

    def resolve_use(self, dotted: str, at: Span, report_missing: bool = True) -> Path | None:
        """File for ``use <dotted>._``; reports root escapes, and not-found unless told not to."""
        rel = Path(*dotted.split("."))
        for root in self.include_roots():
            for suffix in (".psl", ".psl.in"):
                cand = root / (str(rel) + suffix)
                if names_a_file(cand):
                    real = self.real(cand)
                    if not any(_inside(real, r) for r in self.include_roots()):
                        self.diags.add(INC_ESCAPE, f"`use {dotted}._` resolves to {real}, outside every search root", at)
                        return None
                    return real
        if not report_missing:
            return None
        self.diags.add(
            INC_NOT_FOUND,
            f"`use {dotted}._`: no {rel}.psl under " + ", ".join(self.shown(r) or "." for r in self.include_roots()),
            at,
        )
        return None

    # ------------------------------------------------------------------ descriptions
    def _index(self) -> dict[str, dict[str, list[Path]]]:
        """Declared names of every description file under the solution and -I folders."""
        if self._declared is not None:
            return self._declared
        return timed("scan", self._build_index)

    def _build_index(self) -> dict[str, dict[str, list[Path]]]:
        index: dict[str, dict[str, list[Path]]] = {"class": {}, "component": {}, "idl": {}}
        count = 0
        scan_roots = [self.root] + [p for p in self.options.include_dirs]
        seen_files: set[Path] = set()
        for base in scan_roots:
            if not is_folder(base):
                continue
            # Symbolic links are followed (solutions share resources folders that
            # way); each real folder is walked once, so a link cycle ends.
            seen_dirs: set[str] = set()
            for dirpath, dirnames, filenames, links in _walk(os.fspath(base)):
                real = os.path.realpath(dirpath)
                if real in seen_dirs:
                    dirnames[:] = []
                    continue
                seen_dirs.add(real)
                real_dir = Path(real)
                dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
                for fn in sorted(filenames):
                    ext = os.path.splitext(fn)[1]
                    kind = _EXT_KIND.get(ext)
                    if kind is None:
                        continue
                    # (dirpath / fn).resolve(): the folder is resolved already, and a
                    # file that is not a symbolic link resolves to itself in it.
                    if fn in links:
                        path = self.real(Path(dirpath) / fn)
                    else:
                        path = real_dir / fn
                        self._real.setdefault(path, path)
                    if path in seen_files:
                        continue
                    seen_files.add(path)
                    count += 1
                    if count > MAX_INDEXED_FILES:
                        self.diags.add(INC_TOO_MANY_FILES, f"more than {MAX_INDEXED_FILES} .edl/.cdl/.idl files under {self.shown(base)}", None)
                        self._declared = index
                        return index
                    name = self._declared_name(path, kind)
                    if name:
                        index[kind].setdefault(name, []).append(path)
        # An editor's buffer for a file not yet saved is a description too (ksm lsp).
        for text_path in sorted(self.options.overlay):
            path = Path(text_path)
            kind = _EXT_KIND.get(path.suffix)
            if kind is None or path in seen_files or not any(_inside(path, Path(os.path.realpath(b)))
                                                              for b in scan_roots):
                continue
            seen_files.add(path)
            name = self._declared_name(path, kind)
            if name:
                index[kind].setdefault(name, []).append(path)
        self._declared = index
        return index

    def _declared_name(self, path: Path, kind: str) -> str | None:
        if kind == "idl":
            f = self.idl_file(path)
            return f.package.text if f is not None and f.package is not None else None
        f = self.component_file(path, kind)
        return f.name.text if f is not None else None

    def find(self, name: str, kind: str, at: Span | None = None) -> Path | None:
        """Path of the description declaring ``name`` (kind: class, component or idl)."""
        hits = self._index()[kind].get(name, [])
        if hits:
            if len(hits) > 1 and kind != "idl":
                self.diags.add(
                    INC_AMBIGUOUS_FILE,
                    f"{name} is declared in {len(hits)} files: " + ", ".join(self.shown(h) for h in hits),
                    at,
                )
            return hits[0]
        ext = {"class": ".edl", "component": ".cdl", "idl": ".idl"}[kind]
        rel = Path(*name.split(".")).with_suffix(ext) if "." in name else Path(name + ext)
        for root in self.include_roots():
            cand = root / rel
            if names_a_file(cand):
                return self.real(cand)
        return None

    def find_class(self, name: str, at: Span | None = None) -> ComponentFile | None:
        path = self.find(name, "class", at)
        return self.component_file(path, "class") if path else None

    def find_component(self, name: str, at: Span | None = None) -> ComponentFile | None:
        path = self.find(name, "component", at)
        return self.component_file(path, "component") if path else None

    def find_idl(self, package: str, at: Span | None = None) -> IdlFile | None:
        path = self.find(package, "idl", at)
        return self.idl_file(path) if path else None


def _walk(top: str):
    """``os.walk(top, followlinks=True)``, also giving the names of the files that are
    symbolic links (from the folder listing, without a ``stat`` of each file).

    Yields ``(dirpath, dirnames, filenames, links)``; as with ``os.walk``, the caller
    may prune ``dirnames`` in place, and a folder that cannot be listed is skipped.
    """
    try:
        entries = list(os.scandir(top))
    except OSError:
        return
    dirs: list[str] = []
    files: list[str] = []
    links: set[str] = set()
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            dirs.append(entry.name)
        else:
            files.append(entry.name)
            try:
                if entry.is_symlink():
                    links.add(entry.name)
            except OSError:
                links.add(entry.name)
    yield top, dirs, files, links
    for name in dirs:
        yield from _walk(os.path.join(top, name))


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.is_relative_to(root)
    except (OSError, ValueError):
        return False


def locate_policy(target: Path, diags: Diagnostics) -> tuple[Path, Path | None]:
    """(solution root, top-level policy) for a folder or a .psl path."""
    if names_a_file(target):
        return _root_of_policy(target), target
    if not is_folder(target):
        diags.add("SRC001", f"no such file or folder: {target}", None)
        return target, None
    candidates: list[Path] = []
    for sub in (Path("."), Path("einit/src"), Path("einit"), Path("src")):
        for name in ("security.psl", "security.psl.in"):
            p = target / sub / name
            if names_a_file(p):
                candidates.append(p)
        if candidates:
            break
    if not candidates:
        found = sorted(
            p for p in target.rglob("security.psl*")
            if p.name in ("security.psl", "security.psl.in") and not any(part in _SKIP_DIRS for part in p.parts)
        )
        candidates = found
    if not candidates:
        others = sorted(
            p for p in target.rglob("*.psl*")
            if p.name.endswith((".psl", ".psl.in")) and "einit" in p.relative_to(target).parts
            and not any(part in _SKIP_DIRS for part in p.parts)
        )
        listed = "; policies under einit/: " + ", ".join(display_path(p) for p in others[:8]) if others else ""
        diags.add(INC_NO_POLICY, f"no security.psl or security.psl.in under {display_path(target)}{listed}", None,
                  hint="pass the top-level policy file the build compiles (SECURITY_PSL_FILE in einit/CMakeLists.txt)"
                  if others else None)
        return target, None
    if len(candidates) > 1 and not (len(candidates) == 2 and candidates[0].parent == candidates[1].parent):
        diags.add(
            INC_AMBIGUOUS_POLICY,
            "candidates: " + ", ".join(display_path(c) for c in candidates),
            None,
        )
    # security.psl and security.psl.in side by side: the template is the source.
    chosen = sorted(candidates, key=lambda p: (p.parent != candidates[0].parent, not p.name.endswith(".in")))[0]
    built = policies_of_build(target)
    if built and chosen.resolve() not in {b.resolve() for b in built}:
        if len(built) == 1:
            diags.add(INC_BUILD_POLICY, f"einit/CMakeLists.txt compiles {display_path(built[0])}, not "
                                        f"{display_path(chosen)}: checking that one", None)
            return target, built[0]
        diags.add(INC_BUILD_POLICIES, "einit/CMakeLists.txt compiles " + " or ".join(display_path(b) for b in built)
                  + f" (by platform or option), not {display_path(chosen)}; checking {display_path(chosen)}", None)
    return target, chosen


_BUILD_POLICY_RE = re.compile(r'\bSECURITY_PSL(?:_FILE)?\s+(?:"([^"$]+)"|([^\s"$)]+))')


def policies_of_build(root: Path) -> list[Path]:
    """Top-level policies ``einit/CMakeLists.txt`` names (``SECURITY_PSL "src/x.psl"`` or
    ``set (SECURITY_PSL_FILE "src/x.psl")``) that exist, in the order written."""
    cmake = root / "einit" / "CMakeLists.txt"
    try:   # a hint only: whatever keeps it from being read (missing, a FIFO, too large) means no hint
        text = read_user_bytes(cmake).decode("utf-8", errors="replace")
    except UserFileError:
        return []
    out: list[Path] = []
    for m in _BUILD_POLICY_RE.finditer(text):
        p = cmake.parent / (m.group(1) or m.group(2))
        if names_a_file(p) and p not in out:
            out.append(p)
    return out


def _root_of_policy(policy: Path) -> Path:
    """The solution folder of a top-level policy file.

    SDK projects keep the policy under ``<solution>/einit/`` (``einit/src/security.psl``,
    or ``einit/<image>/src/x.psl.in`` when a project builds several images) while the
    EDL/CDL/IDL files sit in the solution's other folders; so a policy inside an
    ``einit`` folder belongs to the folder holding that ``einit``.  Elsewhere the
    policy's own folder is the solution.
    """
    for parents in (policy.parents, policy.resolve().parents):  # as written first: shown paths stay relative
        for parent in parents:
            if parent.name == "einit":
                return parent.parent
    return policy.parent


def locate_init(root: Path, policy: Path | None, explicit: Path | None) -> Path | None:
    """The init description: ``explicit``, else ``init.yaml(.in)`` next to the policy or
    in ``einit/src``, ``einit`` or the solution folder, else one named after the policy
    beside it.  Why the last: projects that build several images keep a pair per image
    (``sim_offline.psl.in`` with ``sim_offline.yaml.in``) and pick one in CMake."""
    if explicit is not None:
        return explicit
    dirs = [policy.parent] if policy is not None else []
    dirs += [root / "einit" / "src", root / "einit", root]
    for d in dirs:
        for name in ("init.yaml.in", "init.yaml", "init.yml"):
            p = d / name
            if names_a_file(p):
                return p
    if policy is not None:
        stem = policy.name.removesuffix(".in").removesuffix(".psl")
        for name in (stem + ".yaml.in", stem + ".yaml", stem + ".yml"):
            p = policy.parent / name
            if names_a_file(p):
                return p
    return None


def present(p: Path) -> bool:
    """Whether anything exists at ``p``; False, not OSError, for a name the file system
    refuses (a 260-character part of a dotted name is ENAMETOOLONG, which Path.exists()
    raises before Python 3.12)."""
    try:
        os.stat(p)
    except (OSError, ValueError):
        return False
    return True


def is_folder(p: Path) -> bool:
    """``Path.is_dir()`` that says False, not OSError, for a name the file system refuses."""
    try:
        return stat.S_ISDIR(os.stat(p).st_mode)
    except (OSError, ValueError):
        return False


def names_a_file(p: Path) -> bool:
    """True when ``p`` exists and is not a folder.

    Not ``is_file()``: a FIFO or a device named ``security.psl`` or ``init.yaml`` is
    still the file the user meant, and skipping it would report a missing file (or
    quietly check without it); taken, it reaches :func:`read_text`, which says why it
    cannot be read (SRC004) without opening it.
    """
    try:
        return not stat.S_ISDIR(os.stat(p).st_mode)
    except (OSError, ValueError):
        return False
