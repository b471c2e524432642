"""The simulated CPE: data model, RPC handling, persistent state, its HTTP client to the ACS."""
