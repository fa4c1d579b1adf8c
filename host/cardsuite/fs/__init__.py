"""The ISO/IEC 7816-4 file system client."""
