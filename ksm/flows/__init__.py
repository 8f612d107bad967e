"""Information flow over the channel graph of a solution (issue 5).

``labels``  which messages of each channel the policy can let through, decided by
            the prover (a proof of denial, or a witness the decision function grants),
            and when (always, or depending on the message or state);
``graph``   the channel graph of process instances and the data-flow graph derived
            from it;
``check``   ``never flow`` properties: a cut certificate or a replayed witness path;
``query``   where data can go: out of / into a process, shortest paths, a matrix;
``export``  DOT, Mermaid, node-link JSON and (``page``) a self-contained HTML page;
``report``  the answers to queries as text or JSON.
"""
from .check import FlowChecker, FlowResult
from .export import GraphExport
from .graph import ChannelGraph, Hop
from .labels import HopLabel, Labeller
from .query import FlowQuery, UnknownProcess

__all__ = ["ChannelGraph", "FlowChecker", "FlowQuery", "FlowResult", "GraphExport", "Hop", "HopLabel",
           "Labeller", "UnknownProcess"]
