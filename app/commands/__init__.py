"""CLI commands; each module exposes `register(subparsers)` and is discovered by `faceparse.app.cli`."""
