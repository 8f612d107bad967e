"""Names that resolve to nothing: found by the front end while resolving the solution.

These are errors of the solution itself (the decision function refuses a solution
that has them), so they are not re-checked here: the catalogue lists them, with
examples, and the linter reports them as the front end found them.
"""
from __future__ import annotations

from ..catalogue import Example, frontend_rule

_STORE = "request src=demo.Client dst=demo.Server endpoint=core.store"

frontend_rule(
    "PSL001", "class-undeclared", category="names",
    why="A selector or test names a process class the policy never declares with `use EDL`. KSM "
        "cannot address events of a class the policy does not know, so the binding is meaningless "
        "(usually a typo, or a forgotten `use EDL`).",
    bad=Example("use demo.prelude._\n\nrequest src=demo.Client dst=demo.Sever endpoint=core.store method=Put { grant () }\n"),
    good=Example(f"use demo.prelude._\n\n{_STORE} method=Put {{ grant () }}\n"),
)
frontend_rule(
    "PSL002", "endpoint-unknown", category="names",
    why="An `endpoint=` selector names no endpoint of the server class. Endpoint names are qualified "
        "through component instances (`core.store`, not `store`); a wrong name selects nothing.",
    bad=Example("use demo.prelude._\n\nrequest src=demo.Client dst=demo.Server endpoint=store method=Put { grant () }\n"),
    good=Example(f"use demo.prelude._\n\n{_STORE} method=Put {{ grant () }}\n"),
)
frontend_rule(
    "PSL003", "method-unknown", category="names",
    why="A `method=` selector names no method of the selected endpoints or interfaces, so the binding "
        "applies to nothing and the method the author meant stays denied (or granted).",
    bad=Example(f"use demo.prelude._\n\n{_STORE} method=Set {{ grant () }}\n"),
    good=Example(f"use demo.prelude._\n\n{_STORE} method=Put {{ grant () }}\n"),
)
frontend_rule(
    "PSL006", "object-unknown", category="names",
    why="A call names a policy object that is neither declared nor created by an nk include.",
    bad=Example(f'use demo.prelude._\n\n{_STORE} method=Put {{ filter.allow {{ sid : src_sid, states : ["on"] }} }}\n'),
    good=Example(f"use demo.prelude._\n\n{_STORE} method=Put {{ grant () }}\n"),
)
frontend_rule(
    "PSL010", "message-field-unknown", category="names",
    why="`message.<name>` names no parameter the event carries: requests carry in-parameters, "
        "responses out-parameters, errors error-parameters. A condition on a missing field cannot be "
        "evaluated.",
    bad=Example(f"use demo.prelude._\n\n{_STORE} method=Put {{ assert (message.value < 10) }}\n"),
    good=Example(f"use demo.prelude._\n\n{_STORE} method=Put {{ assert (message.key < 10) }}\n"),
)
frontend_rule(
    "PSL018", "audit-profile-unknown", category="names",
    why="A binding, section or `audit default` names an audit profile that is not declared.",
    bad=Example(f"use demo.prelude._\n\n{_STORE} method=Put {{\n    audit verbose\n    grant ()\n}}\n"),
    good=Example('use demo.prelude._\n\naudit profile verbose = { 0 : { base : { kss : ["denied"] } } }\n'
                 'audit default = verbose 0\n\n'
                 f"{_STORE} method=Put {{\n    audit verbose\n    grant ()\n}}\n"),
)
frontend_rule(
    "SOL001", "connection-target-unknown", category="names",
    why="An init.yaml connection names a server task that no entity starts, so Einit cannot create "
        "the channel.",
    bad=Example("use demo.prelude._\n",
                init="entities:\n  - name: demo.Client\n    connections:\n      - target: demo.Sever\n"
                     "        id: store\n  - name: demo.Server\n  - name: demo.Logger\n"),
    good=Example("use demo.prelude._\n"),
)
