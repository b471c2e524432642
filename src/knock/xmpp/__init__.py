"""XMPP for TR-069 Annex K: the sans-IO stream codec (`stream`), SASL (`sasl`, `saslprep`),
JIDs (`jid`), one client connection's state machine (`c2s`, with `stanzas` and the server's own
answers in `services`), TLS over memory buffers (`tls`), account lookups (`accounts`), and
Knock's built-in server (`server`), which carries connection-request IQs between full JIDs."""
