"""Access control: credentials (operator tokens, API keys, JWTs), grants and revocation (docs/60_ACCESS.md)."""
