"""scopematrix: which role x HubSpot account x scope set can install an app, and why not."""

__version__ = "0.1.0"
