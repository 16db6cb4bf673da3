import sys; sys.path.insert(0, "tests")
from test_ui_flows import *
def test_dbg(qtbot, window, clip):
    win = window
    open_clip(win, clip)
    store = win.session.store
    win.set_tool("brush")
    win.canvas.tools.brush_radius = 3
    drag(qtbot, win, (70, 60), (110, 60))
    m = store.get_state(win.session.selected, 0).mask.decode()
    ys, xs = np.nonzero(m); print("after1", m.sum(), xs.min(), xs.max(), ys.min(), ys.max(), win.canvas.pixel_size())
    drag(qtbot, win, (110, 60), (110, 100))
    m = store.get_state(win.session.selected, 0).mask.decode()
    ys, xs = np.nonzero(m); print("after2", m.sum(), xs.min(), xs.max(), ys.min(), ys.max(), len(store.objects))
