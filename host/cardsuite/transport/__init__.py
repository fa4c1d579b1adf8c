"""Links to one card: the shared transport behaviour and the PC/SC reader backend."""
