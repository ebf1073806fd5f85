"""HubSpot's install rules as pure data and functions: no web, browser or pytest imports.

The simulator decides with these rules; the project's own tests use them as the oracle. The harness
never imports this package to classify a cell.
"""
