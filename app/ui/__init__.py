"""The annotation workspace (PySide6 + pyqtgraph): views and controllers only, no tracker code.

`main.run_gui(path)` opens the window; `demo.run_demo(selftest)` runs the bundled sample.
"""
