"""Shell completion scripts for bash, zsh and fish, generated from an argparse parser.

Generating them from the parser (rather than keeping three hand-written scripts) means a new
subcommand, option or choice is completed the moment it exists, and the scripts cannot drift.
"""
from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass

SHELLS = ("bash", "zsh", "fish")
_REPEATABLE = (argparse._AppendAction, argparse._AppendConstAction, argparse._CountAction)


@dataclass(frozen=True)
class _Arg:
    """What a completer needs of one argparse action, free of argparse's private classes."""
    flags: tuple[str, ...]  # empty for a positional
    name: str               # metavar or dest: the zsh message
    help: str
    nargs: int              # values an option takes (0: a flag); for positionals 1
    optional: bool          # positional that may be left out
    repeat: bool
    choices: tuple[str, ...]
    path: str               # "file", "dir" or "": what to offer for the value
    stops: bool             # -h/--version: nothing else makes sense after it


@dataclass(frozen=True)
class _Cmd:
    names: tuple[str, ...]  # the subcommand and its aliases
    help: str
    options: tuple[_Arg, ...]
    positionals: tuple[_Arg, ...]


def _path_kind(action: argparse.Action, name: str, help: str) -> str:
    """Guess from the metavar (FILE, DIR, MODULE.py, CEX.json) whether the value is a path:
    argparse has no type for "a path", and offering file names for NAME=VALUE would mislead."""
    if action.choices:
        return ""
    words = set(re.split(r"[^A-Z]+", name.upper()))
    if words & {"DIR", "DIRS", "DIRECTORY", "FOLDER"}:
        return "dir"
    if words & {"FILE", "FILES", "PATH"} or re.search(r"\w\.[A-Za-z0-9]+$", name):  # MODULE.py
        return "file"
    if not action.option_strings and re.search(r"(?i)\b(file|folder|solution)\b|\.psl\b", help):
        return "file"  # a positional "solution folder or top-level .psl": files and folders
    return ""


def _help(action: argparse.Action, prog: str) -> str:
    """The help as --help shows it (%(default)s expanded, %% undoubled), on one line."""
    try:
        help = (action.help or "") % {**vars(action), "prog": prog}
    except (KeyError, ValueError, TypeError):
        help = action.help or ""
    return " ".join(help.split())


def _arg(action: argparse.Action, prog: str) -> _Arg:
    help = _help(action, prog)
    meta = action.metavar
    name = meta if isinstance(meta, str) else (meta[0] if meta else action.dest)
    n = action.nargs
    return _Arg(tuple(action.option_strings), name, help,
                n if isinstance(n, int) else 1, n in ("?", "*"),
                isinstance(action, _REPEATABLE) or n in ("*", "+", argparse.REMAINDER),
                tuple(str(c) for c in action.choices or ()), _path_kind(action, name, help),
                isinstance(action, (argparse._HelpAction, argparse._VersionAction)))


def _cmd(parser: argparse.ArgumentParser, names: tuple[str, ...], help: str, prog: str) -> _Cmd:
    args = [_arg(a, prog) for a in parser._actions
            if a.help != argparse.SUPPRESS and not isinstance(a, argparse._SubParsersAction)]
    return _Cmd(names, help, tuple(a for a in args if a.flags),
                tuple(a for a in args if not a.flags))


def _model(parser: argparse.ArgumentParser, prog: str) -> tuple[_Cmd, list[_Cmd]]:
    """The top level and its subcommands, in parser order so the output is deterministic."""
    cmds: list[_Cmd] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {ca.dest: ca for ca in action._choices_actions}
            groups: dict[int, list[str]] = {}  # a subparser and its aliases
            for name, sub in action.choices.items():
                groups.setdefault(id(sub), []).append(name)
            for names in groups.values():
                about = helps.get(names[0])
                if not about or about.help != argparse.SUPPRESS:  # hidden subcommands stay hidden
                    help = _help(about, prog) if about else ""
                    cmds.append(_cmd(action.choices[names[0]], tuple(names), help, prog))
    return _cmd(parser, (prog,), "", prog), cmds


def _bash_body(cmd: _Cmd, words: list[str], fn: str, ind: str) -> list[str]:
    """Complete within one (sub)command: an option's value, else options or positionals."""
    out = []
    for o in (o for o in cmd.options if o.nargs):
        what = (f'{fn}_words "$cur" {shlex.join(o.choices)}' if o.choices else
                f'{fn}_paths {"-d" if o.path == "dir" else "-f"} "$cur"' if o.path else ":")
        out.append(f"{ind}    {'|'.join(map(shlex.quote, o.flags))}) {what}; return ;;")
    out = [f"{ind}case $prev in", *out, f"{ind}esac"] if out else []
    opts = [f for o in cmd.options for f in o.flags]
    words = words + [c for p in cmd.positionals for c in p.choices]
    kinds = {p.path for p in cmd.positionals}
    pos = [f'{fn}_paths {"-f" if "file" in kinds else "-d"} "$cur"'] if kinds - {""} else []
    if words:
        pos.append(f'{fn}_words "$cur" {shlex.join(words)}')
    offer = f'{fn}_words "$cur" {shlex.join(opts)}'
    if not pos:  # nothing but options: offer them even before a '-' is typed
        return out + [ind + offer]
    return out + [f"{ind}if [[ $cur == -* ]]; then {offer}", f"{ind}else {'; '.join(pos)}", f"{ind}fi"]


def _bash(top: _Cmd, cmds: list[_Cmd], prog: str, fn: str) -> str:
    skip = [f for o in top.options if o.nargs for f in o.flags]
    top_words = [n for c in cmds for n in c.names]
    out = [f"# bash completion for {prog}; generated by ksm.completion, do not edit.",
           "# the words that start with $1, taken literally (compgen -W would expand $, ` and quotes)",
           f'{fn}_words() {{ local cur=$1 w; shift; for w in "$@"; do [[ $w == "$cur"* ]] && COMPREPLY+=("$w"); done; }}',
           "# $1: -f (files and folders) or -d (folders only)",
           f"{fn}_paths() {{ local p; compopt -o filenames 2>/dev/null",
           '    while IFS= read -r p; do COMPREPLY+=("$p"); done < <(compgen "$1" -- "$2"); }',
           f"{fn}() {{",
           "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i",
           "    COMPREPLY=()",
           "    # --opt=value: bash splits at '=', the value is what is completed",
           "    if [[ $cur == = ]]; then cur=; elif [[ $prev == = ]]; then prev=${COMP_WORDS[COMP_CWORD-2]}; fi"]
    if cmds:
        out += ["    for ((i = 1; i < COMP_CWORD; i++)); do",
                "        case ${COMP_WORDS[i]} in"]
        if skip:
            out.append(f"            {'|'.join(map(shlex.quote, skip))}) i=$((i + 1)) ;;")
        out += ["            -*) ;;", "            *) cmd=${COMP_WORDS[i]}; break ;;",
                "        esac", "    done"]
    out += ["    case $cmd in", "        '')"] + _bash_body(top, top_words, fn, " " * 12) + ["            ;;"]
    for c in cmds:
        out.append(f"        {'|'.join(map(shlex.quote, c.names))})")
        out += _bash_body(c, [], fn, " " * 12) + ["            ;;"]
    return "\n".join(out + ["    esac", "}", f"complete -F {fn} {shlex.quote(prog)}", ""])


def _zq(text: str, chars: str = "\\[]:") -> str:
    """Backslash the characters _arguments gives a meaning to (it strips the backslashes)."""
    return re.sub("([" + re.escape(chars) + "])", r"\\\1", text)


def _zsh_action(a: _Arg) -> str:
    if a.choices:  # each choice is one word of a list that zsh splits and unquotes
        return "(" + " ".join(re.sub(r"([^\w.,/+=@%-])", r"\\\1", c) for c in a.choices) + ")"
    return {"file": "_files", "dir": "_files -/"}.get(a.path, " ")


def _zsh_specs(cmd: _Cmd) -> list[str]:
    specs = []
    for o in cmd.options:
        excl = "(- *)" if o.stops else "" if o.repeat or len(o.flags) < 2 else f"({' '.join(o.flags)})"
        value = f":{_zq(o.name)}:{_zsh_action(o)}" * o.nargs
        for f in o.flags:
            sep = ("=" if len(f) > 2 else "+") if o.nargs else ""
            about = f"[{_zq(o.help)}]" if o.help else ""
            specs.append(f"{excl}{'*' if o.repeat else ''}{_zq(f)}{sep}{about}{value}")
    for p in cmd.positionals:
        lead = "*" if p.repeat else ""
        about = p.help if p.help and len(p.help) <= 60 else p.name  # the heading of the matches
        specs.append(f"{lead}:{':' if p.optional else ''}{_zq(about)}:{_zsh_action(p)}")
    return [shlex.quote(s) for s in specs]


def _zsh(top: _Cmd, cmds: list[_Cmd], prog: str, fn: str) -> str:
    tail = ["'1: :->command'", "'*:: :->args'"] if cmds else []
    out = [f"#compdef {prog}", f"# zsh completion for {prog}; generated by ksm.completion, do not edit.",
           "", f"{fn}() {{", "  local curcontext=$curcontext state line ret=1; local -a subcmds; typeset -A opt_args",
           "  _arguments -s -S -C \\"] + [f"    {s} \\" for s in _zsh_specs(top) + tail]
    out += ["    && ret=0", "  case $state in", "    (command)", "      subcmds=("]
    out += [f"        {shlex.quote(_zq(n, ':') + ':' + c.help)}" for c in cmds for n in c.names]
    out += ["      )", f"      _describe -t commands {shlex.quote(prog + ' command')} subcmds && ret=0 ;;",
            "    (args)", f"      curcontext=${{curcontext%:*:*}}:{prog}-$words[1]:",
            "      case $words[1] in"]
    for c in cmds:
        out.append(f"        ({'|'.join(map(shlex.quote, c.names))})")
        out += ["          _arguments -s -S \\"] + [f"            {s} \\" for s in _zsh_specs(c)]
        out += ["            && ret=0 ;;"]
    out += ["      esac ;;", "  esac", "  return ret", "}", "",
            "# autoloaded from $fpath: complete now; sourced: register the function",
            f'if [[ $funcstack[1] == {fn} ]]; then {fn} "$@"; else compdef {fn} {shlex.quote(prog)}; fi', ""]
    return "\n".join(out)


def _fq(text: str) -> str:
    """Fish quoting: inside single quotes only \\ and ' are special."""
    plain = re.fullmatch(r"[\w.,/+=@%:-]+", text)
    return text if plain else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_value(a: _Arg) -> str:
    """-a is parsed again by fish, so each choice is quoted inside the quoted list."""
    if a.choices:
        return "-a " + _fq(" ".join(map(_fq, a.choices)))
    return {"file": "-F", "dir": "-a '(__fish_complete_directories)'"}.get(a.path, "")


def _fish_lines(cmd: _Cmd, head: str) -> list[str]:
    out = []
    for o in cmd.options:
        flags = " ".join(("-l " if f.startswith("--") else "-s " if len(f) == 2 else "-o ")
                         + _fq(f.lstrip("-")) for f in o.flags)
        value = (" -r " if o.path == "file" else " -x ") + _fish_value(o) if o.nargs else ""
        out.append(f"{head} {flags}{value.rstrip()}" + (f" -d {_fq(o.help)}" if o.help else ""))
    return out + [f"{head} {_fish_value(p)}" for p in cmd.positionals if _fish_value(p)]


def _fish(top: _Cmd, cmds: list[_Cmd], prog: str, fn: str) -> str:
    c = f"complete -c {_fq(prog)}"
    out = [f"# fish completion for {prog}; generated by ksm.completion, do not edit.", f"{c} -f"]
    head = f"{c} -n __fish_use_subcommand" if cmds else c
    out += _fish_lines(top if not cmds else _Cmd(top.names, "", top.options, ()), head)
    out += [f"{head} -a {_fq(n)}" + (f" -d {_fq(s.help)}" if s.help else "")
            for s in cmds for n in s.names]
    values = {o.names: {ch for p in o.positionals for ch in p.choices} for o in cmds}
    for s in cmds:  # `ksm bench prove`: "prove" is a value of bench there, not a subcommand
        hosts = [n for o in cmds if o is not s and values[o.names] & set(s.names) for n in o.names]
        cond = "__fish_seen_subcommand_from " + " ".join(map(_fq, s.names))
        if hosts:
            cond += "; and not __fish_seen_subcommand_from " + " ".join(map(_fq, hosts))
        out += _fish_lines(s, f"{c} -n {_fq(cond)}")
    return "\n".join(out + [""])


def completion_script(parser: argparse.ArgumentParser, shell: str, prog: str = "ksm") -> str:
    """The completion script for `shell` ("bash", "zsh" or "fish") of the CLI `parser` builds,
    installed for the command `prog`. Same parser, same text. ValueError for another shell."""
    if shell not in SHELLS:
        raise ValueError(f"unsupported shell {shell!r}: expected one of {', '.join(SHELLS)}")
    top, cmds = _model(parser, prog)
    fn = "_" + re.sub(r"\W", "_", prog)
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](top, cmds, prog, fn)
