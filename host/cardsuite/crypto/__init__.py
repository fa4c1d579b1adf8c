"""Block ciphers, padding and MACs, once for every secure channel (the wallet's issuer channel, SCP02, SCP03)."""
