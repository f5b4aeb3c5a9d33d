"""Routing analysis: pure statistics, recording hooks, reports."""
