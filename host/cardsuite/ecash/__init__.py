"""Divisible prepaid e-cash: hash chains, the card client, and the CA, broker and vendor roles."""
