"""Explain a blocked cell by experiment: which scopes block, who is at fault, and which fix works.

Probes are authorize flows with subsets of the requested scopes that stop at the decision; they never
install. Every probe URL is one HubSpot accepts for the probing app's scope settings: required scopes are
always sent, only conditionally required ones are left out. With a probe app (every candidate scope
conditionally required) any subset is valid. A probe that HubSpot answers with anything but a decision
(an app-configuration error, an outage, an unknown screen) is inconclusive: never "installs", never
"blocked". A scope is named only when the probes proved it: the named set blocks, and the request
without it installs.

Group testing (binary splitting, one culprit at a time) assumes a scope blocks on its own; when the probes
contradict that, delta debugging (ddmin) takes over.

Rooms: probes.py (what a probe sends, the run's answers, every probe with your app), search.py (group
testing and ddmin), diagnoser.py (one blocked cell: the search, the proof, attribution and remedies).
"""

from scopematrix.diagnose.diagnoser import Diagnoser
from scopematrix.diagnose.probes import Inconclusive, ProbeCache, ProbePlan
from scopematrix.diagnose.search import binary_splitting, ddmin

__all__ = ["Diagnoser", "Inconclusive", "ProbeCache", "ProbePlan", "binary_splitting", "ddmin"]
