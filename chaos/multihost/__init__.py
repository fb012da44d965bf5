"""`make cluster-test`: the shop on several hosts of one machine (docs/scale-out.md, "Several hosts").

net.py builds the hosts (network namespaces on a bridge), hosts.py starts the shop's
processes in them, buyers.py is the load generator each web host gets, run.py runs the
sale with its faults and checks the invariants afterwards.
"""
