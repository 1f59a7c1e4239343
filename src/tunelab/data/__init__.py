"""Data stage: read labelled rows, balance, split, tokenize, batch."""
