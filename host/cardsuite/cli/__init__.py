"""The `cardsuite` command line: only this layer prints."""
