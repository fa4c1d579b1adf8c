"""The simulated card: the Java bridge on jCardSim, in-process or behind pcscd/vpcd."""
