"""`faceparse-studio [FOLDER]`: start the studio, optionally opening a folder of photos or a project."""

from __future__ import annotations

import argparse
import sys

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QApplication

from .main_window import MainWindow
from .settings import StudioSettings
from .style import apply_style


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="faceparse-studio",
                                     description="FaceParse Studio: pre-label, correct, retrain and export "
                                                 "face-parsing masks.")
    parser.add_argument("folder", nargs="?", metavar="FOLDER",
                        help="a folder of face photos, a project folder, or one image to open first")
    parser.add_argument("--schema", metavar="NAME",
                        help="label schema if FOLDER is not a project yet (default: ask)")
    return parser.parse_args(argv)


def launch(argv: list[str]) -> MainWindow:
    """Create the application and the window, and open FOLDER if one was given; the event loop is not started."""
    args = parse_args(argv)
    QCoreApplication.setOrganizationName("FaceParse")
    QCoreApplication.setApplicationName("FaceParse Studio")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_style(app)
    window = MainWindow(StudioSettings())
    window.show()
    if args.folder:
        window.open_folder(args.folder, args.schema)
    return window


def main(argv: list[str] | None = None) -> int:
    window = launch(sys.argv[1:] if argv is None else argv)
    return QApplication.instance().exec() if window is not None else 1


if __name__ == "__main__":
    sys.exit(main())
