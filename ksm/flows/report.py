"""Answers to flow queries (``ksm flows --from/--into/--paths/--matrix``) as text or JSON."""
from __future__ import annotations

import json

from .graph import Hop
from .query import FlowQuery


def chain(hops: list[Hop]) -> str:
    """A path on one line: ``A -[request e.M]-> B -[error e.N]-> C``."""
    if not hops:
        return ""
    return hops[0].source + "".join(f" -[{h.what}]-> {h.target}" for h in hops)


def render_queries(query: FlowQuery, fmt: str, out_of: str | None = None, into: str | None = None,
                   paths: tuple[str, str] | None = None, matrix: bool = False, by_class: bool = False) -> str:
    """Every query asked, in the order of the options, as text or one JSON object."""
    text: list[str] = []
    data: dict = {}
    if query.avoid:
        text.append(f"(without {', '.join(sorted(query.avoid))})")
        data["avoid"] = sorted(query.avoid)
    for name, reaches, verb in ((out_of, query.out_of, "data from {} can reach"),
                                (into, query.into, "data can reach {} from")):
        if name is None:
            continue
        found = reaches(name)
        text.append(f"{verb.format(name)} {len(found)} process(es):")
        text += [f"  {r.node:<24} {len(r.hops)} hop(s): {chain(r.hops)}" for r in found]
        key = "out_of" if reaches == query.out_of else "into"
        data[key] = {"process": name, "reach": [{"process": r.node, "path": [h.to_json() for h in r.hops]}
                                                 for r in found]}
    if paths is not None:
        found_paths = query.shortest_paths(*paths)
        if found_paths:
            text.append(f"{len(found_paths)} shortest flow path(s) of {len(found_paths[0])} hop(s) "
                        f"from {paths[0]} to {paths[1]}:")
        else:
            text.append(f"no flow path from {paths[0]} to {paths[1]}")
        text += [f"  {chain(p)}" for p in found_paths]
        data["paths"] = {"from": paths[0], "to": paths[1], "paths": [[h.to_json() for h in p] for p in found_paths]}
    if matrix:
        names, cells = query.matrix(by_class)
        text.append(f"data flows from row to column ({'classes' if by_class else 'processes'}; X: it can):")
        width = max(len(n) for n in names)
        text.append(" " * (width + 2) + " ".join(f"{i % 100:>2}" for i in range(len(names))))
        for i, a in enumerate(names):
            row = " ".join(" X" if cells[(a, b)] else " ." for b in names)
            text.append(f"{a:<{width}}  {row}   {i}")
        data["matrix"] = {"names": names, "rows": [[cells[(a, b)] for b in names] for a in names]}
    if fmt == "json":
        return json.dumps(data, indent=2)
    return "\n".join(text)
