"""`python -m tunelab.cli`: the `tunelab` command (compare and the UI start runs this way)."""

from tunelab.cli import main

main()
