"""Knock: a TR-069 (CWMP) ACS, CPE simulator and connection-request conformance checker."""

__version__ = "0.1.0"
