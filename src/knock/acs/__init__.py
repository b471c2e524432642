"""The ACS: the CWMP service CPEs talk to, their authentication, task plans and provisioning."""
