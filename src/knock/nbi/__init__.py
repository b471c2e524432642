"""The northbound API: a REST API shaped like GenieACS's NBI (`app`), its client and CLI commands.

GenieACS scripts carry over: same routes, MongoDB-style queries, device and task documents.
"""
