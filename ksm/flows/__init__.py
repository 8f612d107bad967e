"""Information flow over the channel graph of a solution (issue 5).

``labels``  which messages of each channel the policy can let through, decided by
            the prover (a proof of denial, or a witness the decision function grants);
``graph``   the channel graph of process instances and the data-flow graph derived
            from it;
``check``   ``never flow`` properties: a cut certificate or a replayed witness path.
"""
