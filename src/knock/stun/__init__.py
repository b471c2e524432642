"""STUN for TR-111: the classic RFC 3489 codec (`attributes`, `codec`), the server's decisions
(`service`) and its UDP socket (`server`), which UDP connection requests also leave from."""
