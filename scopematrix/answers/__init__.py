"""Answers for the people who hit the wall: `scopematrix explain` (support) and the troubleshooting page
(customers), both read from a finished run's results only: nothing here logs in or guesses.

Rooms: profile.py (what a customer can say about themselves), explain.py (one customer's question
answered from the measured cells), troubleshoot.py (the page and its Markdown twin).
"""
