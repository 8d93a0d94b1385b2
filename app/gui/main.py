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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    QCoreApplication.setOrganizationName("FaceParse")
    QCoreApplication.setApplicationName("FaceParse Studio")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_style(app)
    window = MainWindow(StudioSettings())
    window.show()
    if args.folder:
        window.open_folder(args.folder, args.schema)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
