"""GlobalPlatform: secure channels, the card manager client, keys, the brick guard, the gp.jar wrapper."""
