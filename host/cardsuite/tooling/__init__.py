"""The build pipeline: the manifest, the Java Card toolchain, CAP files and their sizes."""
