"""The application: Qt-free model and video layers, the command line, and the PySide6 window (ui/)."""
