"""The wallet: card client, issuer secure messaging, card numbers, and the issuer and merchant roles."""
