"""Proofs about a solution's policy: the Z3 model, properties, diff and cross-check.

``universe`` fixes the finite world (processes after start-up, event keys),
``message`` builds symbolic messages from the IDL, ``program`` encodes what the
decision function does with an event, ``prove`` answers properties with a proof or
a counterexample that the decision function confirms.
"""
